"""edge-train --resume: the folder given is the run (copied, moved, named from another working
folder), and a damaged config.json or state.json stops it with one line."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

keras = pytest.importorskip("keras")

from edge_runtime.preprocess import InputSpec  # noqa: E402
from tests.training_helpers import build_tiny, interrupted_after_each_epoch  # noqa: E402
from trainer import train as train_module  # noqa: E402
from trainer.cli import app  # noqa: E402
from trainer.config import make_config  # noqa: E402
from trainer.models import ARCHITECTURES, Architecture  # noqa: E402

runner = CliRunner()


@pytest.fixture
def tiny_edge(monkeypatch):
    monkeypatch.setitem(ARCHITECTURES, "edge", Architecture("edge", build_tiny, InputSpec(scale=1.0), "tiny"))


def stopped_run(launch: Path, fer_folder: Path, monkeypatch) -> Path:
    """`edge-train` started in `launch` with relative paths (--data, --out runs/r, --cache-dir),
    killed after its first of two epochs; the working folder stays `launch`."""
    launch.mkdir(parents=True, exist_ok=True)
    monkeypatch.chdir(launch)
    original = train_module._EpochCheckpoint
    monkeypatch.setattr(train_module, "_EpochCheckpoint", interrupted_after_each_epoch(original))
    options = ["--data", os.path.relpath(fer_folder, launch), "--out", "runs/r", "--cache-dir", "cache"]
    result = runner.invoke(app, [*options, "--epochs", "2", "--batch-size", "64"])
    assert result.exit_code == 130, result.output
    monkeypatch.setattr(train_module, "_EpochCheckpoint", original)
    return launch / "runs" / "r"


def files_of(folder: Path) -> dict[str, bytes]:
    return {path.relative_to(folder).as_posix(): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


def epochs_done(run: Path) -> int:
    return json.loads((run / "state.json").read_text())["epochs_done"]


def test_a_copied_run_resumes_into_the_copy_and_leaves_the_original_untouched(tmp_path, fer_folder, tiny_edge, monkeypatch):
    original = stopped_run(tmp_path / "launch", fer_folder, monkeypatch)
    copy = tmp_path / "copy"
    shutil.copytree(original, copy)
    before = files_of(original)

    result = runner.invoke(app, ["--resume", str(copy)])
    assert result.exit_code == 0, result.output
    assert epochs_done(copy) == 2 and (copy / "metrics.json").is_file()
    assert files_of(original) == before
    assert f"artifacts in {copy}:" in result.output


def test_a_moved_run_resumes(tmp_path, fer_folder, tiny_edge, monkeypatch):
    moved = tmp_path / "moved"
    shutil.move(stopped_run(tmp_path / "launch", fer_folder, monkeypatch), moved)

    result = runner.invoke(app, ["--resume", str(moved)])
    assert result.exit_code == 0, result.output
    assert epochs_done(moved) == 2
    assert not (tmp_path / "launch" / "runs" / "r").exists()


def test_a_run_resumes_from_another_working_folder_with_relative_paths(tmp_path, fer_folder, tiny_edge, monkeypatch):
    run = stopped_run(tmp_path / "launch", fer_folder, monkeypatch)
    config = json.loads((run / "config.json").read_text())
    # Files outside the run are recorded absolute; the run folder as typed.
    assert config["data"] == str(Path(os.path.relpath(fer_folder, tmp_path / "launch")).absolute())
    assert config["cache_dir"] == str(tmp_path / "launch" / "cache") and config["out"] == "runs/r"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    result = runner.invoke(app, ["--resume", "../launch/runs/r"])
    assert result.exit_code == 0, result.output
    assert epochs_done(run) == 2
    assert not (elsewhere / "runs").exists()


# --- damaged config.json and state.json: one line each ---------------------------------------

STOPPED_STATE = {"epochs_done": 1, "best_epoch": 1, "best_val_accuracy": 0.2, "history": [], "train_seconds": 1.0}


def stopped_run_files(folder: Path, fer_folder: Path) -> Path:
    """The config.json and state.json of a run stopped after its first epoch."""
    config = make_config(str(fer_folder), str(folder), "edge", epochs=2, batch_size=32, cache_dir=str(folder.parent / "cache"))
    folder.mkdir(parents=True)
    config.save(folder / "config.json")
    (folder / "state.json").write_text(json.dumps(STOPPED_STATE))
    return folder


def edited(text: str, **changes) -> str:
    data = json.loads(text)
    for key, value in changes.items():
        if value is None:
            data.pop(key)
        else:
            data[key] = value
    return json.dumps(data)


# (file, how it is damaged: its good text -> the damaged one, the message after the file's name)
DAMAGED = {
    "config not JSON": ("config.json", lambda text: "{data: fer}", "not valid JSON (Expecting property name enclosed in "
                        "double quotes: line 1 column 2); expected an object holding the run's settings (data, out, arch, "
                        "epochs, ...) (a damaged or truncated copy?)"),
    "config truncated": ("config.json", lambda text: text[:len(text) // 2], "not valid JSON ("),
    "config a list": ("config.json", lambda text: "[]", "a JSON list; expected an object holding the run's settings "
                      "(data, out, arch, epochs, ...)"),
    "config without data": ("config.json", lambda text: edited(text, data=None), "'data' is missing; expected a string, "
                            "as edge-train writes it"),
    "config epochs a string": ("config.json", lambda text: edited(text, epochs="2"), "'epochs' is \"2\"; expected an integer"),
    "config augment a number": ("config.json", lambda text: edited(text, augment=1), "'augment' is 1; expected true or false"),
    "config unknown arch": ("config.json", lambda text: edited(text, arch="edge-v9"), "'arch' is 'edge-v9'; expected one of "
                            "edge, edge-wide, seed, vgg, resnet18"),
    "state not JSON": ("state.json", lambda text: "\x00\x01", "not valid JSON (Expecting value: line 1 column 1); expected an "
                     "object holding the run's progress (epochs_done, best_epoch, history, ...) (a damaged or truncated copy?)"),
    "state truncated": ("state.json", lambda text: text[:len(text) // 2], "not valid JSON ("),
    "state a number": ("state.json", lambda text: "3", "a JSON number; expected an object holding the run's progress "
                       "(epochs_done, best_epoch, history, ...)"),
    "state without history": ("state.json", lambda text: edited(text, history=None), "'history' is missing; expected a list "
                              "of objects, as edge-train writes it"),
    "state epochs_done a string": ("state.json", lambda text: edited(text, epochs_done="1"), "'epochs_done' is \"1\"; "
                                   "expected an integer >= 0"),
    "state negative epochs_done": ("state.json", lambda text: edited(text, epochs_done=-1), "'epochs_done' is -1; "
                                   "expected an integer >= 0"),
    "state history rows not objects": ("state.json", lambda text: edited(text, history=[1, 2]), "'history' is [1, 2]; "
                                       "expected a list of objects"),
    "state plateau without wait": ("state.json", lambda text: edited(text, plateau={"best": 0.2, "cooldown": 0}),
                                   "'plateau.wait' is missing; expected an integer >= 0, as edge-train writes it"),
}


@pytest.mark.parametrize("damage", list(DAMAGED))
def test_a_damaged_config_or_state_file_is_one_line(tmp_path, fer_folder, damage):
    name, damaging, message = DAMAGED[damage]
    run = stopped_run_files(tmp_path / "run", fer_folder)
    path = run / name
    path.write_text(damaging(path.read_text()))

    result = runner.invoke(app, ["--resume", str(run)])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1, result.output
    assert result.output.strip().startswith(f"edge-train: error: {path}: {message}")
    if damage.endswith("truncated"):
        assert result.output.strip().endswith("(a damaged or truncated copy?)")
