"""The detector table: YuNet beside Haar, `auto` and its fallback, and the detector file's
cache and verified download (against a local HTTP server on 127.0.0.1)."""

from __future__ import annotations

import dataclasses
import http.server
import os
import socket
import threading
import time
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from edge_runtime.cli import app
from edge_runtime.detectors import (
    DETECTOR_NAMES,
    DetectorError,
    DetectorFallbackWarning,
    DetectorSettings,
    downloads,
    fetch_all,
    get_detector_info,
    load_detector,
)
from edge_runtime.detectors.table import YUNET_FILE, DetectorInfo
from edge_runtime.detectors.yunet import YuNetDetector
from edge_runtime.model_files.bundled import MODELS_DIR
from fer_data.scenes import match_boxes
from tests.conftest import FIXTURE_MODELS, SHARED_YUNET

needs_yunet = pytest.mark.skipif(not SHARED_YUNET.is_file(), reason="needs the YuNet file in ../shared/models")
runner = CliRunner()
BUNDLED_MODEL = MODELS_DIR / "emotion_int8.onnx"


@pytest.fixture()
def empty_cache(tmp_path, monkeypatch) -> Path:
    """A cache of this test's own, without the YuNet file."""
    monkeypatch.setenv("EDGE_EMOTION_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "models"


class _Files(http.server.BaseHTTPRequestHandler):
    """Serves /good/, /truncated/ and /wrong/ copies of the YuNet file; /hang/ never answers."""

    bodies: dict[str, bytes] = {}

    def do_GET(self):  # noqa: N802 - the http.server name
        folder = self.path.strip("/").split("/")[0]
        if folder == "hang":
            time.sleep(20)
            return
        body = self.bodies.get(folder)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture()
def mirror(monkeypatch):
    """A local HTTP server; returns a function that points the download mirror at one of its folders."""
    good = SHARED_YUNET.read_bytes() if SHARED_YUNET.is_file() else b""
    _Files.bodies = {"good": good, "truncated": good[: len(good) // 3], "wrong": b"not a model" * 100}
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Files)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def use(folder: str) -> None:
        monkeypatch.setenv("EDGE_EMOTION_MODEL_MIRROR", f"http://127.0.0.1:{server.server_address[1]}/{folder}")

    yield use
    server.shutdown()
    server.server_close()



# --- the table ---------------------------------------------------------------------------------


def test_table_rows_have_what_the_cli_and_auto_need():
    assert set(DETECTOR_NAMES) == {"haar", "yunet"}
    yunet = get_detector_info("yunet")
    assert yunet.landmarks and yunet.model_file is YUNET_FILE and yunet.options["score_threshold"] is not None
    assert YUNET_FILE.url.startswith("https://") and YUNET_FILE.sha256 in YUNET_FILE.sha256 and len(YUNET_FILE.sha256) == 64
    haar = get_detector_info("haar")
    assert haar.model_file is None and not haar.landmarks and haar.crop.scale == 1.0
    assert set(haar.options) == {"cascade", "scale_factor", "min_neighbors"}


class RowDetector:
    """A detector of a row that is not in the shipped table: finds one box of its row's size."""

    def __init__(self, side: int) -> None:
        self.side = side

    @classmethod
    def from_settings(cls, row, settings):
        return cls(row.value(settings, "side"))

    def detect(self, frame):
        return [(0, 0, self.side, self.side)]


@dataclasses.dataclass(frozen=True)
class SidedSettings(DetectorSettings):
    """DetectorSettings with the fake row's own setting."""

    side: int | None = None


def fake_row(name: str, side: int) -> DetectorInfo:
    haar = get_detector_info("haar")
    return dataclasses.replace(haar, name=name, module=__name__, class_name="RowDetector", options={"side": side})


def test_a_row_builds_its_own_detector_from_its_defaults_and_the_settings(monkeypatch):
    import edge_runtime.detectors.table as table

    rows = (*table.DETECTORS, fake_row("boxer", side=30))
    monkeypatch.setattr(table, "DETECTORS", rows)
    chosen = load_detector(SidedSettings(name="boxer"))
    assert chosen.name == "boxer" and chosen.detector.detect(None) == [(0, 0, 30, 30)]
    assert load_detector(SidedSettings(name="boxer", side=12)).detector.side == 12
    # Its own setting is refused for another detector, and under auto it chooses its row.
    with pytest.raises(DetectorError, match="^side is a boxer setting, not a haar one"):
        SidedSettings(name="haar", side=12)
    assert load_detector(SidedSettings(side=12)).name == "boxer"


def test_the_haar_row_holds_the_cascade_defaults():
    from edge_runtime.detectors.haar import HaarDetector

    haar = get_detector_info("haar")
    built = haar.build(DetectorSettings(name="haar"))
    assert (built.scale_factor, built.min_neighbors, built.min_size) == (haar.options["scale_factor"], haar.options["min_neighbors"],
                                                                         haar.min_size)
    assert HaarDetector().scale_factor == haar.options["scale_factor"]
    assert haar.build(DetectorSettings(name="haar", scale_factor=1.5, min_neighbors=2)).min_neighbors == 2


def test_unknown_detector_names_the_choices():
    with pytest.raises(DetectorError, match="Unknown detector 'yunett'. Choose one of: auto, yunet, haar. Did you mean 'yunet'"):
        DetectorSettings(name="yunett")


# --- YuNet -------------------------------------------------------------------------------------


@needs_yunet
@pytest.mark.parametrize("detect_scale", [1.0, 0.5])
def test_yunet_finds_the_faces_with_scores_and_landmarks(two_face_scene, detect_scale):
    frame, truth = two_face_scene
    found = YuNetDetector(SHARED_YUNET, detect_scale=detect_scale).detect(frame)
    assert all(m is not None for m in match_boxes(truth, [d.box for d in found], min_iou=0.4)), found
    for detection in found:
        x, y, w, h = detection.box
        assert 0.5 <= detection.score <= 1.0 and len(detection.landmarks) == 5
        # Both eyes lie inside the box, right eye (image left) left of the left eye.
        (rx, ry), (lx, ly) = detection.landmarks[:2]
        assert x <= rx < lx <= x + w and y <= ry <= y + h


@needs_yunet
def test_yunet_takes_gray_bgra_and_tiny_frames(two_face_scene):
    frame, truth = two_face_scene
    detector = YuNetDetector(SHARED_YUNET)
    gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    assert len(detector.detect(gray)) == len(detector.detect(cv2.cvtColor(frame, cv2.COLOR_BGR2BGRA))) == len(truth)
    assert detector.detect(np.zeros((3, 2, 3), np.uint8)) == []
    assert detector.detect(np.full((480, 640, 3), 120, np.uint8)) == []


def test_damaged_or_missing_yunet_file_is_one_line(tmp_path):
    damaged = tmp_path / "yunet.onnx"
    damaged.write_bytes(b"\x08\x01garbage" * 50)
    with pytest.raises(DetectorError, match="not a YuNet ONNX model OpenCV can load"):
        YuNetDetector(damaged)
    with pytest.raises(DetectorError, match="no such detector model file"):
        load_detector(DetectorSettings(name="yunet", model=tmp_path / "missing.onnx"))


def test_an_onnx_model_that_is_not_yunet_is_one_line_naming_what_yunet_has(capfd):
    expected = (
        f"{FIXTURE_MODELS['onnx']}: not a YuNet face detector (inputs face; outputs probabilities); "
        "expected one image input and the outputs cls_8, cls_16, cls_32, obj_*, bbox_*, kps_*"
    )
    with pytest.raises(DetectorError) as refused:
        YuNetDetector(FIXTURE_MODELS["onnx"])
    assert str(refused.value) == expected
    result = runner.invoke(app, ["--no-display", "--source", "demo", "--detector-model", str(FIXTURE_MODELS["onnx"])])
    assert result.exit_code == 1
    assert result.output.strip() == f"error: {expected}"
    assert capfd.readouterr().err == "", "OpenCV printed its own errors"


@pytest.mark.parametrize("kwargs, message", [({"score_threshold": 1.5}, "score_threshold"), ({"detect_scale": 0}, "detect_scale")])
def test_yunet_rejects_bad_settings(kwargs, message):
    with pytest.raises(DetectorError, match=message):
        YuNetDetector(SHARED_YUNET, **kwargs)


# --- the cache and the download ----------------------------------------------------------------


@needs_yunet
def test_download_is_verified_and_written_into_the_cache(empty_cache, mirror):
    mirror("good")
    path = downloads.fetch(YUNET_FILE)
    assert path == empty_cache / YUNET_FILE.file_name and path.read_bytes() == SHARED_YUNET.read_bytes()
    assert oct(path.stat().st_mode & 0o777) == oct(0o666 & ~_umask())  # the user's umask, not 0600
    assert sorted(p.name for p in empty_cache.iterdir()) == [YUNET_FILE.file_name]


@pytest.mark.parametrize(
    "folder, message", [("truncated", "not the pinned"), ("wrong", "not the pinned"), ("missing", "HTTP 404 Not Found")]
)
def test_a_bad_download_keeps_nothing(empty_cache, mirror, folder, message):
    mirror(folder)
    with pytest.raises(DetectorError, match=message):
        downloads.fetch(YUNET_FILE)
    assert not (empty_cache / YUNET_FILE.file_name).exists()
    assert not any(p.name.startswith(".") for p in empty_cache.iterdir())  # no temporary file left
    assert downloads.recent_failure(YUNET_FILE)  # remembered, so `auto` does not retry at every start


def test_a_server_that_never_answers_costs_the_time_out_only(empty_cache, mirror):
    mirror("hang")
    started = time.monotonic()
    with pytest.raises(DetectorError, match="no complete answer within 1 s"):
        downloads.fetch(YUNET_FILE, timeout_s=1.0)
    assert time.monotonic() - started < 10  # the server would hold it 20 s


@needs_yunet
def test_a_damaged_cached_copy_is_refused_with_the_fix(empty_cache):
    empty_cache.mkdir(parents=True)
    (empty_cache / YUNET_FILE.file_name).write_bytes(SHARED_YUNET.read_bytes()[:-10])
    with pytest.raises(DetectorError, match="delete it and run 'edge-run --fetch-models'"):
        load_detector(DetectorSettings(name="yunet"))


# --- auto --------------------------------------------------------------------------------------


@needs_yunet
def test_auto_takes_yunet_from_the_cache():
    chosen = load_detector()
    assert chosen.name == "yunet" and chosen.note == "" and chosen.crop == get_detector_info("yunet").crop


def test_auto_falls_back_to_haar_once_and_then_skips_the_network(empty_cache, monkeypatch):
    monkeypatch.setenv("EDGE_EMOTION_MODEL_MIRROR", f"http://127.0.0.1:{_closed_port()}")
    with pytest.warns(DetectorFallbackWarning):
        first = load_detector()
    assert first.name == "haar" and "yunet unavailable" in first.note and "download failed" in first.note

    def no_network(*args, **kwargs):
        raise AssertionError("auto must not try the download again so soon")

    monkeypatch.setattr(downloads, "_read_url", no_network)
    with pytest.warns(DetectorFallbackWarning):
        second = load_detector()
    assert second.name == "haar" and "edge-run --fetch-models' retries" in second.note


def _says_how_to_install_by_hand(message: str, cache: Path) -> bool:
    """The message names the resolved cache path of the YuNet file and --detector-model."""
    return str((cache / YUNET_FILE.file_name).absolute()) in message and "--detector-model PATH" in message


def test_a_failed_download_says_where_the_file_goes_by_hand(empty_cache, monkeypatch):
    monkeypatch.setenv("EDGE_EMOTION_MODEL_MIRROR", f"http://127.0.0.1:{_closed_port()}")
    with pytest.raises(DetectorError) as failed:
        load_detector(DetectorSettings(name="yunet"))
    message = str(failed.value)
    assert "download failed" in message and _says_how_to_install_by_hand(message, empty_cache)
    assert len(message.splitlines()) == 1
    with pytest.raises(DetectorError) as cached_only:
        load_detector(DetectorSettings(name="yunet", download=False))
    assert _says_how_to_install_by_hand(str(cached_only.value), empty_cache)


def test_auto_warns_once_with_the_path_when_it_falls_back(empty_cache, monkeypatch):
    monkeypatch.setattr(downloads, "_read_url", _no_network)
    for attempt in ("download fails", "download skipped after a failure"):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            chosen = load_detector()
        fallbacks = [w for w in caught if issubclass(w.category, DetectorFallbackWarning)]
        assert len(fallbacks) == 1, attempt
        assert chosen.name == "haar" and _says_how_to_install_by_hand(str(fallbacks[0].message), empty_cache), attempt
        assert _says_how_to_install_by_hand(chosen.note, empty_cache)


def test_auto_says_nothing_when_yunet_is_taken_or_haar_is_asked_for(empty_cache):
    with warnings.catch_warnings():
        warnings.simplefilter("error", DetectorFallbackWarning)
        assert load_detector(DetectorSettings(name="haar")).name == "haar"
        if SHARED_YUNET.is_file():
            assert load_detector(DetectorSettings(model=SHARED_YUNET)).name == "yunet"


@pytest.mark.skipif(not BUNDLED_MODEL.is_file(), reason="needs the bundled model")
def test_edge_run_says_the_fallback_once(empty_cache, monkeypatch, tmp_path):
    monkeypatch.setattr(downloads, "_read_url", _no_network)
    photo = tmp_path / "blank.png"
    cv2.imwrite(str(photo), np.full((120, 160, 3), 128, np.uint8))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = runner.invoke(app, ["--source", str(photo), "--no-display"])
    assert result.exit_code == 0, result.output
    assert not [w for w in caught if issubclass(w.category, DetectorFallbackWarning)]  # the summary says it
    assert result.output.count("--detector-model PATH") == 1
    assert "detector: haar (yunet unavailable" in result.output


def _no_network(url, *args, **kwargs):
    raise DetectorError(f"{url}: download failed (no network)")


def test_auto_with_a_cascade_means_haar_and_with_a_model_means_yunet(tmp_path):
    from edge_runtime.detectors.haar import default_cascade_path

    assert load_detector(DetectorSettings(cascade=default_cascade_path())).name == "haar"
    with pytest.raises(DetectorError, match="no such detector model file"):
        load_detector(DetectorSettings(model=tmp_path / "missing.onnx"))


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"name": "yunet", "cascade": "x.xml"}, "^cascade is a haar setting, not a yunet one; use it with detector haar"),
        ({"name": "haar", "model": "x.onnx"}, "^model is a yunet setting, not a haar one; use it with detector yunet"),
        ({"name": "yunet", "scale_factor": 1.3}, "^scale_factor is a haar setting"),
        ({"name": "haar", "score_threshold": 0.7}, "^score_threshold is a yunet setting"),
        ({"cascade": "x.xml", "model": "x.onnx"}, r"^model \(yunet\), cascade \(haar\) name 2 detectors; pass the settings of one"),
    ],
)
def test_a_setting_of_the_other_detector_is_refused_not_ignored(settings, message):
    with pytest.raises(DetectorError, match=message):
        DetectorSettings(**settings)


def test_download_false_uses_the_cache_only(empty_cache):
    with pytest.raises(DetectorError, match="fetch it with 'edge-run --fetch-models'"):
        load_detector(DetectorSettings(name="yunet", download=False))


# --- edge-run ----------------------------------------------------------------------------------


@needs_yunet
def test_fetch_models_command(empty_cache, mirror):
    mirror("good")
    result = runner.invoke(app, ["--fetch-models"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"ok {empty_cache / YUNET_FILE.file_name}"
    assert downloads.recent_failure(YUNET_FILE) is None
    assert fetch_all() == [empty_cache / YUNET_FILE.file_name]  # verified cached copy, no download


def test_fetch_models_without_network_is_one_line_and_exit_1(empty_cache, monkeypatch):
    monkeypatch.setenv("EDGE_EMOTION_MODEL_MIRROR", f"http://127.0.0.1:{_closed_port()}")
    result = runner.invoke(app, ["--fetch-models"])
    assert result.exit_code == 1
    assert result.output.startswith("error: http://127.0.0.1:") and "download failed" in result.output
    assert len(result.output.strip().splitlines()) == 1


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
