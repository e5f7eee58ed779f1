"""Every export format, converted once from the tiny model: parity with Keras, metadata the
backends read back, ONNX validity and dynamic batch, reports."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edge_runtime.backends import BackendError, load_backend
from edge_runtime.labels import LABELS
from edge_runtime.model_files.formats import FORMATS, get_format
from edge_runtime.model_files.metadata import ONNX_METADATA_KEY, ModelMetadata, file_sha256, read_sidecar, sidecar_path
from edge_runtime.preprocess import gray48_to_input
from tests.synthetic import synthetic_split

pytest.importorskip("tensorflow")
pytest.importorskip("tf2onnx")
pytest.importorskip("onnxruntime")

from convert.api import convert_model  # noqa: E402
from convert.exporters import EXPORTABLE  # noqa: E402
from convert.verify import PARITY_THRESHOLDS, judged_by_max_diff  # noqa: E402

STEM = "emotion"


@pytest.fixture(scope="module")
def exported(tiny_model, fer_folder, tmp_path_factory):
    """All six formats of the tiny model, calibrated and verified on the synthetic folder."""
    out = tmp_path_factory.mktemp("exports")
    results = convert_model(tiny_model, EXPORTABLE, out, stem=STEM, calibration_data=fer_folder, verify_data=fer_folder)
    return {result.format: result for result in results}


@pytest.fixture(scope="module")
def fresh_faces(tiny_model):
    """Faces none of the conversion steps saw, and the Keras model's probabilities for them."""
    import keras

    images, labels = synthetic_split(10, seed=11)
    batch = gray48_to_input(images, read_sidecar(tiny_model).input)
    model = keras.models.load_model(tiny_model, compile=False)
    return batch, labels, np.asarray(model(batch, training=False))


def test_every_exportable_format_is_written_under_its_table_name(exported, tmp_path):
    assert set(EXPORTABLE) == {row.name for row in FORMATS} - {"keras"}
    for name in EXPORTABLE:
        result = exported[name]
        assert result.path.name == get_format(name).file_name(STEM)
        assert result.path.is_file() and result.size_bytes == result.path.stat().st_size > 0
        assert result.passed, result.report["verification"]["reason"]


@pytest.mark.parametrize("name", EXPORTABLE)
def test_export_computes_what_keras_computes(exported, fresh_faces, name):
    batch, _, reference = fresh_faces
    with load_backend(exported[name].path) as backend:
        probabilities = backend.predict(batch)
    assert probabilities.shape == reference.shape
    agreement = np.mean(probabilities.argmax(1) == reference.argmax(1))
    difference = np.abs(probabilities - reference)
    if judged_by_max_diff(get_format(name).precision):
        assert difference.max() <= PARITY_THRESHOLDS.max_diff
    else:
        assert agreement >= PARITY_THRESHOLDS.min_agreement
        assert difference.mean() < 0.02  # reduced precision moves probabilities a little, not a lot


@pytest.mark.parametrize("name", EXPORTABLE)
def test_backends_read_the_export_metadata(exported, tiny_model, name):
    source = read_sidecar(tiny_model)
    with load_backend(exported[name].path) as backend:
        metadata = backend.metadata
    assert metadata.labels == LABELS
    assert metadata.input == source.input
    assert tuple(metadata.input_shape) == (48, 48, 1)
    assert metadata.format == name
    assert metadata.source_sha256 == file_sha256(tiny_model)
    assert metadata.arch == "tiny"
    assert metadata.version


def test_int8_tflite_records_its_tensor_quantisation(exported):
    from ai_edge_litert.interpreter import Interpreter

    path = exported["tflite-int8"].path
    extra = read_sidecar(path).extra
    interpreter = Interpreter(model_path=str(path))
    for role, detail in (("input", interpreter.get_input_details()[0]), ("output", interpreter.get_output_details()[0])):
        recorded = extra[f"{role}_quantization"]
        assert recorded["dtype"] == "int8" == np.dtype(detail["dtype"]).name
        assert recorded["scale"] == pytest.approx(detail["quantization"][0])
        assert recorded["zero_point"] == detail["quantization"][1]
    assert extra["calibration_size"] == 140  # every train face of the synthetic folder (20 per class)


def test_tflite_exports_have_a_dynamic_batch(exported, fresh_faces):
    batch = fresh_faces[0]
    for name in ("tflite-fp32", "tflite-int8"):
        with load_backend(exported[name].path) as backend:
            assert backend.interpreter.get_input_details()[0]["shape_signature"][0] == -1
            assert backend.predict(batch[:1]).shape == (1, 7)
            assert backend.predict(batch[:5]).shape == (5, 7)


@pytest.mark.parametrize("name", ["onnx-fp32", "onnx-int8"])
def test_onnx_export_is_valid_with_dynamic_batch_and_embedded_metadata(exported, fresh_faces, name):
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(exported[name].path))
    onnx.checker.check_model(model, full_check=True)
    assert next(op.version for op in model.opset_import if op.domain in ("", "ai.onnx")) >= 13
    batch_dim = model.graph.input[0].type.tensor_type.shape.dim[0]
    assert batch_dim.dim_param and not batch_dim.dim_value
    props = {prop.key: prop.value for prop in model.metadata_props}
    assert ModelMetadata.from_json(props[ONNX_METADATA_KEY]).format == name
    assert not sidecar_path(exported[name].path).exists()  # ONNX carries its metadata inside
    session = ort.InferenceSession(str(exported[name].path), providers=["CPUExecutionProvider"])
    assert session.get_outputs()[0].name == "probabilities"
    for size in (1, 5):
        (probabilities,) = session.run(None, {session.get_inputs()[0].name: fresh_faces[0][:size]})
        assert probabilities.shape == (size, 7)


def test_onnx_int8_is_qdq_with_int8_tensors(exported):
    import onnx

    model = onnx.load(str(exported["onnx-int8"].path))
    ops = {node.op_type for node in model.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    zero_points = {init.name: init.data_type for init in model.graph.initializer if init.name.endswith("zero_point")}
    # Signed int8 activations and weights (S8S8); biases are int32. Never uint8.
    assert zero_points["face_zero_point"] == onnx.TensorProto.INT8
    assert set(zero_points.values()) <= {onnx.TensorProto.INT8, onnx.TensorProto.INT32}
    per_channel = [init for init in model.graph.initializer if init.name.endswith("_scale") and len(init.dims) == 1 and init.dims[0] > 1]
    assert per_channel, "weights should carry one scale per output channel"


def test_reports_are_written_next_to_each_export(exported, fer_folder):
    for name, result in exported.items():
        report_path = result.path.with_name(result.path.name + ".report.json")
        report = json.loads(report_path.read_text())
        assert report == json.loads(json.dumps(result.report))
        verification = report["verification"]
        assert report["format"] == name and report["size_bytes"] == result.size_bytes
        assert verification["passed"] is True
        assert verification["n"] == 42 and verification["split"] == "val"  # 6 PublicTest faces per class
        assert verification["data"] == str(fer_folder)
        assert 0.0 <= verification["keras_accuracy"] <= 1.0 and 0.0 <= verification["export_accuracy"] <= 1.0
        expected_metric = "max_abs_diff" if judged_by_max_diff(get_format(name).precision) else "agreement"
        assert verification["criterion"]["metric"] == expected_metric


def test_float_io_keeps_float_tensors_on_int8_tflite(tiny_model, fer_csv, tmp_path, fresh_faces):
    (result,) = convert_model(tiny_model, ["tflite-int8"], tmp_path, calibration_data=fer_csv, verify=False, float_io=True)
    assert result.report is None and result.passed
    assert not result.path.with_name(result.path.name + ".report.json").exists()
    with load_backend(result.path) as backend:
        assert np.dtype(backend.input["dtype"]) == np.float32
        assert np.dtype(backend.output["dtype"]) == np.float32
        probabilities = backend.predict(fresh_faces[0])
    assert np.mean(probabilities.argmax(1) == fresh_faces[2].argmax(1)) >= PARITY_THRESHOLDS.min_agreement
    assert read_sidecar(result.path).extra["input_quantization"]["dtype"] == "float32"


def test_an_unverified_rewrite_removes_the_stale_report(tiny_model, fer_csv, tmp_path):
    (verified,) = convert_model(tiny_model, ["onnx-fp32"], tmp_path, verify_data=fer_csv)
    report_path = verified.path.with_name(verified.path.name + ".report.json")
    assert report_path.exists()
    convert_model(tiny_model, ["onnx-fp32"], tmp_path, verify=False)
    assert not report_path.exists()


@pytest.mark.parametrize("name", EXPORTABLE)
def test_every_export_carries_a_checksum_the_runtime_checks(exported, name):
    from edge_runtime.model_files.integrity import verify_model_file

    path = exported[name].path
    assert verify_model_file(path) is True
    assert exported[name].report["metadata"]["checksum"].startswith("sha256:")
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.with_name("flipped_" + path.name).write_bytes(bytes(data))
    if sidecar_path(path).exists():
        sidecar_path(path.with_name("flipped_" + path.name)).write_text(sidecar_path(path).read_text())
    with pytest.raises(BackendError, match="checksum mismatch"):
        load_backend(path.with_name("flipped_" + path.name))
