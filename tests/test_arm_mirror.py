"""tools/arm/host_mirror.sh: the ARM run takes its Debian mirror from the host's apt sources."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "tools" / "arm" / "host_mirror.sh"

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


def mirror(apt: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT)], env={"APT_DIR": str(apt), "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=30)


def test_a_deb822_source_names_the_mirror_and_the_security_archive_is_passed_over(tmp_path):
    (tmp_path / "sources.list.d").mkdir(parents=True)
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb-src\nURIs: http://src.example/debian\nSuites: bookworm\n\n"
        "Types: deb\nURIs: http://security.example/debian-security\nSuites: bookworm-security\n\n"
        "Types: deb\n# a comment\nURIs: http://mirror.example/debian/ http://second.example/debian\nSuites: bookworm\n")
    done = mirror(tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "http://mirror.example/debian"


def test_a_one_line_source_with_options_names_the_mirror(tmp_path):
    (tmp_path / "sources.list").write_text(
        "# deb http://commented.example/debian bookworm main\n"
        "deb-src http://src.example/debian bookworm main\n"
        "deb [arch=amd64 signed-by=/k.gpg] https://mirror.example/debian bookworm main\n")
    done = mirror(tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "https://mirror.example/debian"


def test_no_source_is_one_line_naming_the_folder_and_the_option(tmp_path):
    done = mirror(tmp_path)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.strip() == (f"host_mirror: no Debian archive in {tmp_path}/sources.list or {tmp_path}/sources.list.d/ "
                                   "(*.list, *.sources); pass --mirror URL")
