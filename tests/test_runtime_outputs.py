"""Output files (JSONL, CSV, video) and the choice of the bundled model."""

from __future__ import annotations

import csv
import json
import os
import stat
import sys
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

import edge_runtime.model_files.bundled as default_model
from edge_runtime.labels import LABELS
from edge_runtime.outputs.paths import refuse_shared_paths
from edge_runtime.outputs.writers import OutputError, Outputs, VideoOutput, face_record
from edge_runtime.pipeline.emotion_detector import Face
from edge_runtime.preprocess import to_bgr
from tests.conftest import REPOSITORY_MODELS
from tests.synthetic import count_video_frames


def make_face(track_id=1, box=(10, 20, 30, 40), score=0.91234):
    probabilities = dict(zip(LABELS, (0.05, 0.05, 0.1, 0.5, 0.1, 0.1, 0.1)))
    return Face(box=box, track_id=track_id, label="happy", confidence=0.5, probabilities=probabilities, uncertain=False,
                score=score)


def test_face_record_schema():
    record = face_record(3, 0.2, make_face(), {"source": "clip.mp4", "detector": "yunet"})
    assert record == {
        "frame": 3,
        "time": 0.2,
        "source": "clip.mp4",
        "detector": "yunet",
        "track_id": 1,
        "box": [10, 20, 30, 40],
        "score": 0.9123,
        "label": "happy",
        "confidence": 0.5,
        "uncertain": False,
        "probabilities": dict(zip(LABELS, (0.05, 0.05, 0.1, 0.5, 0.1, 0.1, 0.1))),
    }
    json.dumps(record)


def test_a_face_without_a_detector_score_is_written_null_and_empty(tmp_path):
    # Haar gives no score, and a face classified whole had no detector at all.
    outputs = Outputs(tmp_path / "o.jsonl", tmp_path / "o.csv", None)
    outputs.write(0, None, [make_face(score=None)], None, {"source": "crop.png", "detector": None})
    outputs.close()
    (record,) = [json.loads(line) for line in (tmp_path / "o.jsonl").read_text().splitlines()]
    assert record["score"] is None and record["detector"] is None
    with open(tmp_path / "o.csv", newline="") as handle:
        (row,) = list(csv.DictReader(handle))
    assert row["score"] == "" and row["detector"] == "" and row["source"] == "crop.png"


def test_records_are_flushed_frame_by_frame_and_the_video_appears_when_closed(tmp_path):
    paths = {"jsonl": tmp_path / "o.jsonl", "csv_path": tmp_path / "o.csv", "video": tmp_path / "o.avi"}
    outputs = Outputs(**paths, video_fps=5)
    assert not list(tmp_path.iterdir()), "nothing is created before the first frame"
    frame = np.zeros((60, 80, 3), np.uint8)
    for i in range(3):
        outputs.write(i, i / 5, [make_face(), make_face(2, (40, 5, 20, 20))], frame)
        # What `tail -f` or a run killed now would see: every record of every finished frame.
        assert len(paths["jsonl"].read_text().splitlines()) == 2 * (i + 1)
        assert len(paths["csv_path"].read_text().splitlines()) == 1 + 2 * (i + 1)
    assert not paths["video"].exists()
    outputs.close()
    outputs.close()  # idempotent
    assert len(paths["jsonl"].read_text().splitlines()) == 6
    with open(paths["csv_path"], newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0][:13] == [
        "frame", "time", "source", "detector", "track_id", "x", "y", "w", "h", "score", "label", "confidence", "uncertain"
    ]
    assert rows[0][13:] == [f"p_{label}" for label in LABELS]
    assert len(rows) == 7
    capture = cv2.VideoCapture(str(paths["video"]))
    assert capture.get(cv2.CAP_PROP_FRAME_COUNT) == 3
    capture.release()
    assert not list(tmp_path.glob(".*"))


def test_video_keeps_the_first_frame_size_and_takes_any_channels(tmp_path):
    video = VideoOutput(tmp_path / "v.mp4", fps=None)
    video.write(np.zeros((48, 64, 3), np.uint8))
    video.write(np.zeros((100, 100), np.uint8))
    video.write(np.zeros((30, 30, 4), np.uint8))
    video.close()
    capture = cv2.VideoCapture(str(tmp_path / "v.mp4"))
    ok, frame = capture.read()
    assert ok and frame.shape == (48, 64, 3)
    capture.release()


def test_video_without_frames_leaves_no_file(tmp_path):
    video = VideoOutput(tmp_path / "v.mp4")
    video.close()
    assert not list(tmp_path.iterdir())


def test_output_errors(tmp_path):
    with pytest.raises(OutputError, match="unknown video container '.gif'"):
        VideoOutput(tmp_path / "v.gif")
    with pytest.raises(OutputError, match="is a folder"):
        Outputs(jsonl=tmp_path)


def test_to_bgr():
    assert to_bgr(np.zeros((4, 5), np.uint8)).shape == (4, 5, 3)
    assert to_bgr(np.zeros((4, 5, 1), np.uint8)).shape == (4, 5, 3)
    assert to_bgr(np.zeros((4, 5, 4), np.uint8)).shape == (4, 5, 3)
    assert to_bgr(np.full((4, 5, 3), 300.0)).dtype == np.uint8
    bgr = np.zeros((4, 5, 3), np.uint8)
    assert to_bgr(bgr) is not bgr and to_bgr(bgr, copy=False) is bgr  # a copy to draw on, unless asked not to


def test_default_backend_is_the_first_installed_with_a_bundled_file(tmp_path, monkeypatch):
    monkeypatch.setattr(default_model, "MODELS_DIR", tmp_path)
    monkeypatch.setattr(default_model, "MASTER_MODELS_DIR", tmp_path)
    for name in default_model.BUNDLED_MODELS.values():
        (tmp_path / name).write_bytes(b"")
    monkeypatch.setattr(default_model, "installed_backends", lambda: ["onnx", "tflite", "keras"])
    assert default_model.default_backend() == "onnx"
    assert default_model.default_model_path() == tmp_path / "emotion_int8.onnx"
    assert default_model.default_model_path("keras") == tmp_path / "emotion.keras"
    monkeypatch.setattr(default_model, "installed_backends", lambda: ["tflite", "keras"])
    assert default_model.default_model_path() == tmp_path / "emotion_int8.tflite"
    (tmp_path / "emotion_int8.tflite").unlink()
    assert default_model.default_backend() == "keras"
    monkeypatch.setattr(default_model, "installed_backends", lambda: [])
    with pytest.raises(default_model.DefaultModelError, match=r'pip install -e "\.\[onnx\]" \(in the edge-emotion folder\)'):
        default_model.default_backend()


def test_bundled_models_are_in_place():
    for backend in default_model.BUNDLED_MODELS:
        if backend != "keras":
            assert default_model.bundled_file(backend).is_file(), backend
    assert (default_model.MODELS_DIR / "emotion_int8.tflite.json").is_file()
    # The Keras master is kept out of the runtime package (it needs TensorFlow): it is found in
    # the repository's models/, which is where the package looks when it runs from a clone.
    assert default_model.bundled_file("keras") == default_model.MASTER_MODELS_DIR / "emotion.keras"
    assert (REPOSITORY_MODELS / "emotion.keras").is_file() and (REPOSITORY_MODELS / "emotion.keras.json").is_file()
    if Path(default_model.__file__).resolve().parents[1] == REPOSITORY_MODELS.parent:
        assert default_model.MASTER_MODELS_DIR.resolve() == REPOSITORY_MODELS
    assert not (default_model.MODELS_DIR / "emotion.keras").exists()


def write_three_frames(outputs):
    for i in range(3):
        outputs.write(i, i / 5, [make_face()], np.zeros((48, 64, 3), np.uint8))
    outputs.close()


def read_fifo(path, into):
    def read():
        with open(path, "rb") as handle:
            into.append(handle.read())

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread


def test_devices_and_fifos_are_written_in_place_never_replaced(tmp_path):
    fifos = {name: tmp_path / name for name in ("records.jsonl", "table.csv", "video.mkv")}
    received = {}
    threads = []
    for name, path in fifos.items():
        os.mkfifo(path)
        received[name] = []
        threads.append(read_fifo(path, received[name]))
    write_three_frames(Outputs(jsonl=fifos["records.jsonl"], csv_path=fifos["table.csv"], video=fifos["video.mkv"]))
    for thread in threads:
        thread.join(timeout=30)
    for name, path in fifos.items():
        assert stat.S_ISFIFO(os.stat(path).st_mode), f"{name} was replaced"
    assert len(received["records.jsonl"][0].splitlines()) == 3
    assert len(received["table.csv"][0].splitlines()) == 4
    assert received["video.mkv"][0][:4] == b"\x1a\x45\xdf\xa3"  # the Matroska signature
    write_three_frames(Outputs(jsonl=os.devnull, csv_path=os.devnull))
    assert stat.S_ISCHR(os.stat(os.devnull).st_mode)
    assert not list(tmp_path.glob(".*"))


def test_dash_writes_the_records_to_standard_output(capsys):
    write_three_frames(Outputs(jsonl="-"))
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and json.loads(lines[0])["label"] == "happy"
    assert not sys.stdout.closed


def test_a_symlink_is_written_through_and_stays_a_link(tmp_path):
    (tmp_path / "real").mkdir()
    for name in ("o.jsonl", "o.mp4"):
        (tmp_path / name).symlink_to(tmp_path / "real" / name)
    write_three_frames(Outputs(jsonl=tmp_path / "o.jsonl", video=tmp_path / "o.mp4"))
    for name in ("o.jsonl", "o.mp4"):
        assert (tmp_path / name).is_symlink()
    assert len((tmp_path / "real" / "o.jsonl").read_text().splitlines()) == 3
    assert count_video_frames(tmp_path / "real" / "o.mp4") == 3
    assert not list(tmp_path.rglob(".*"))


def test_new_files_follow_the_umask_and_a_replaced_video_keeps_its_mode(tmp_path):
    (tmp_path / "old.avi").write_bytes(b"previous")
    os.chmod(tmp_path / "old.avi", 0o600)
    previous = os.umask(0o027)
    try:
        write_three_frames(Outputs(jsonl=tmp_path / "o.jsonl", csv_path=tmp_path / "o.csv", video=tmp_path / "o.mp4"))
        write_three_frames(Outputs(video=tmp_path / "old.avi"))
    finally:
        os.umask(previous)
    for name in ("o.jsonl", "o.csv", "o.mp4"):
        assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == 0o640, name
    assert stat.S_IMODE(os.stat(tmp_path / "old.avi").st_mode) == 0o600
    assert count_video_frames(tmp_path / "old.avi") == 3


def test_a_video_that_cannot_be_renamed_leaves_no_hidden_file(tmp_path):
    video = VideoOutput(tmp_path / "v.mp4")
    video.write(np.zeros((48, 64, 3), np.uint8))
    (tmp_path / "v.mp4").mkdir()  # the target became a folder during the run
    (tmp_path / "v.mp4" / "keep").write_text("x")
    with pytest.raises(OutputError, match="v.mp4: cannot be written"):
        video.close()
    assert [p.name for p in tmp_path.iterdir()] == ["v.mp4"]


def test_a_killed_run_s_hidden_video_is_removed_by_the_next_run(tmp_path):
    dead_pid = 2**22 + 17  # above Linux's pid_max default, so no process has it
    stranded = tmp_path / f".v.mp4.{dead_pid}.part.mp4"
    live = tmp_path / f".v.mp4.{os.getppid()}.part.mp4"
    for path in (stranded, live):
        path.write_bytes(b"\0" * 100)
    write_three_frames(Outputs(video=tmp_path / "v.mp4"))
    assert not stranded.exists()
    assert live.exists(), "another running process's file was touched"
    assert count_video_frames(tmp_path / "v.mp4") == 3


def test_output_paths_that_name_the_source_or_each_other_are_refused(tmp_path):
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"video")
    (tmp_path / "link.mp4").symlink_to(clip)
    with pytest.raises(OutputError, match=r"^--save-video .*link.mp4: is the source being read; choose another output path$"):
        refuse_shared_paths(clip, {"--jsonl": None, "--save-video": tmp_path / "link.mp4"})
    with pytest.raises(OutputError, match=r"^--csv .*o.txt: is also the --jsonl output; give each output its own path$"):
        refuse_shared_paths(None, {"--jsonl": tmp_path / "o.txt", "--csv": tmp_path / "sub" / ".." / "o.txt"})
    with pytest.raises(OutputError, match=r"^--csv -: is also the --jsonl output"):
        refuse_shared_paths(None, {"--jsonl": "/dev/stdout", "--csv": "-"})
    refuse_shared_paths(clip, {"--jsonl": os.devnull, "--csv": os.devnull, "--save-video": tmp_path / "out.mp4"})
    assert clip.read_bytes() == b"video"


def test_unwritable_output_paths_are_refused_before_anything_is_created(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match=r"--jsonl .*file/o.jsonl: cannot be created; .*file is not a writable folder"):
        refuse_shared_paths(None, {"--jsonl": tmp_path / "file" / "o.jsonl"})
    refuse_shared_paths(None, {"--jsonl": tmp_path / "new" / "deeper" / "o.jsonl"})
    assert not (tmp_path / "new").exists()


def test_a_second_run_on_the_same_outputs_is_refused_and_writes_nothing(tmp_path):
    paths = {"jsonl": tmp_path / "o.jsonl", "csv_path": tmp_path / "o.csv", "video": tmp_path / "o.avi"}
    frame = np.zeros((48, 64, 3), np.uint8)
    first = Outputs(**paths)
    first.write(0, 0.0, [make_face()], frame)
    seconds = {"jsonl": tmp_path / "second.jsonl", "csv_path": tmp_path / "second.csv", "video": tmp_path / "second.avi"}
    for key, option in (("jsonl", "--jsonl"), ("csv_path", "--csv"), ("video", "--save-video")):
        # A second run sharing one of the first run's outputs, the others its own.
        second = Outputs(**{**seconds, key: paths[key]})
        with pytest.raises(OutputError, match=rf"^{option} {paths[key]}: another run is writing it; wait for it to end or choose"):
            second.write(0, 0.0, [make_face(2)], frame)
        second.close()
        assert not list(tmp_path.glob("second*")), "the refused run wrote its other outputs"
    first.write(1, 0.2, [make_face()], frame)
    first.close()
    assert [json.loads(line)["frame"] for line in paths["jsonl"].read_text().splitlines()] == [0, 1]
    assert len(paths["csv_path"].read_text().splitlines()) == 3
    assert count_video_frames(paths["video"]) == 2
    assert not list(tmp_path.glob(".*")), "a lock file was left"
    # Once the first run has ended, the same paths are free again.
    write_three_frames(Outputs(**paths))
    assert count_video_frames(paths["video"]) == 3


def test_standard_output_devices_and_fifos_are_never_locked(tmp_path, capsys):
    fifo = tmp_path / "records.jsonl"
    os.mkfifo(fifo)
    received = []
    reader = read_fifo(fifo, received)
    runs = [Outputs(jsonl=fifo, csv_path=os.devnull), Outputs(jsonl="-", csv_path=os.devnull)]
    for i in range(2):
        for outputs in runs:
            outputs.write(i, i / 5, [make_face()])
    for outputs in runs:
        outputs.close()
    reader.join(timeout=30)
    assert len(received[0].splitlines()) == 2
    assert len(capsys.readouterr().out.splitlines()) == 2
