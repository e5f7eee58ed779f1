"""A model whose output is not finite (NaN, infinity): its faces get no label, the track's
smoothing is not poisoned, and the records stay valid JSON and CSV."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from edge_runtime.cli import app
from edge_runtime.labels import LABELS
from edge_runtime.model_files.integrity import CHECKSUM_KEY, stamp_model_file
from edge_runtime.model_files.metadata import ONNX_METADATA_KEY
from edge_runtime.model_files.onnx_props import read_props
from edge_runtime.outputs.writers import Outputs
from edge_runtime.pipeline.emotion_detector import EmotionDetector, Face
from tests.conftest import FIXTURE_MODELS
from tests.synthetic import count_video_frames

pytest.importorskip("onnxruntime")
runner = CliRunner()


def strict_json(line: str) -> dict:
    """json.loads that refuses the NaN and Infinity Python's json writes by default."""
    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")

    return json.loads(line, parse_constant=refuse)


def nan_onnx(folder: Path) -> Path:
    """The tiny model's interface (48x48x1 in, 7 probabilities out, its metadata) with NaN weights."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    weights = numpy_helper.from_array(np.full((48 * 48, len(LABELS)), np.nan, np.float32), "w")
    nodes = [helper.make_node("Flatten", ["face"], ["flat"]), helper.make_node("MatMul", ["flat", "w"], ["logits"]),
             helper.make_node("Softmax", ["logits"], ["probabilities"])]
    graph = helper.make_graph(nodes, "nan", [helper.make_tensor_value_info("face", TensorProto.FLOAT, [None, 48, 48, 1])],
                              [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, len(LABELS)])], [weights])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    metadata = json.loads(read_props(FIXTURE_MODELS["onnx"].read_bytes())[ONNX_METADATA_KEY])
    metadata.pop(CHECKSUM_KEY)
    helper.set_model_props(model, {ONNX_METADATA_KEY: json.dumps(metadata)})
    path = folder / "nan.onnx"
    onnx.save(model, str(path))
    stamp_model_file(path)
    return path


class OneBox:
    """A fake detector: the same face box in every frame."""

    def detect(self, frame):
        return [(100, 60, 120, 120)]


def test_a_non_finite_output_gives_no_label_and_leaves_the_track_s_average_alone():
    frame = np.full((240, 320, 3), 128, np.uint8)
    with EmotionDetector(FIXTURE_MODELS["onnx"], detector=OneBox()) as detector:
        predict = detector.backend.predict

        def frames():
            """The same frame three times, the model's output NaN for the second."""
            yield frame
            detector.backend.predict = lambda batch, *args: np.full((len(batch), len(LABELS)), np.nan, np.float32)
            yield frame
            detector.backend.predict = predict
            yield frame

        before, broken, after = [result.faces[0] for result in detector.stream(frames())]
    assert broken.track_id == before.track_id == after.track_id
    assert broken.label is None and broken.uncertain and math.isnan(broken.confidence)
    # The same picture again: the smoothed average is what it was before the NaN frame.
    assert after.label == before.label
    assert after.probabilities == pytest.approx(before.probabilities)


def test_a_face_without_a_label_is_written_as_valid_json_and_csv(tmp_path):
    face = Face(box=(1, 2, 3, 4), track_id=1, label=None, confidence=math.nan,
                probabilities={label: math.nan for label in LABELS}, uncertain=True)
    with Outputs(jsonl=tmp_path / "o.jsonl", csv_path=tmp_path / "o.csv") as outputs:
        outputs.write(0, 0.0, [face])
    record = strict_json((tmp_path / "o.jsonl").read_text())
    assert record["label"] is None and record["confidence"] is None and record["uncertain"] is True
    assert set(record["probabilities"].values()) == {None}
    with open(tmp_path / "o.csv", newline="") as handle:
        (row,) = csv.DictReader(handle)
    assert row["label"] == "" and row["confidence"] == "" and row["uncertain"] == "1"
    assert {row[f"p_{label}"] for label in LABELS} == {""}


def test_edge_run_with_a_model_that_outputs_nan_writes_null_labels(tmp_path):
    paths = {"--jsonl": tmp_path / "o.jsonl", "--csv": tmp_path / "o.csv", "--save-video": tmp_path / "o.avi"}
    args = ["--model", str(nan_onnx(tmp_path)), "--no-display", "--detector", "haar", "--source", "demo", "--max-frames", "2"]
    result = runner.invoke(app, [*args, *(str(item) for pair in paths.items() for item in pair)])
    assert result.exit_code == 0, result.output
    records = [strict_json(line) for line in paths["--jsonl"].read_text().splitlines()]
    assert records and all(r["label"] is None and r["confidence"] is None and r["uncertain"] for r in records)
    assert f"labels: none | uncertain: {len(records)} | no label (model output not finite): {len(records)}" in result.output
    with open(paths["--csv"], newline="") as handle:
        assert {row["label"] for row in csv.DictReader(handle)} == {""}
    assert count_video_frames(paths["--save-video"]) == 2
