"""The model's compute floor: its multiply-adds over the CPU's measured peak.

Multiply-adds (MACs) are counted from the model graph, per face: convolutions (depthwise and
grouped too) and dense layers, which are nearly all of a CNN's arithmetic; pooling, batch
norm and activations are left out. The peak is measured, not taken from a datasheet: the best
of several large float32 matrix products (2*n^3 floating-point operations each) through numpy's
BLAS and, when installed, through ONNX Runtime's own kernels. The floor `2 * MACs / peak` is
the time one face would take if the runtime kept the CPU as busy as a large matmul does: the
distance from it says how much a float32 model leaves on the table. int8 models can go below
it, because integer dot-product instructions (VNNI) outrun float FMAs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from benchmarks.model_bench import guess_format
from edge_runtime.model_files.formats import FORMAT_NAMES, PRECISIONS, backend_for_path, get_format

PEAK_MATRIX_SIZE = 2048
PEAK_REPEATS = 5


def _product(dims) -> int:
    total = 1
    for dim in dims:
        total *= int(dim) if isinstance(dim, (int, np.integer)) and dim > 0 else 1
    return total


def count_macs_onnx(path: str | Path) -> int:
    """MACs per face of an ONNX model (Conv, Gemm, MatMul), through ONNX shape inference.

    Raises:
        ImportError: the `onnx` package is not installed.
    """
    import onnx
    from onnx import numpy_helper, shape_inference

    model = shape_inference.infer_shapes(onnx.load(str(path)))
    shapes: dict[str, list] = {}
    for init in model.graph.initializer:
        shapes[init.name] = list(numpy_helper.to_array(init).shape)
    for value in [*model.graph.value_info, *model.graph.input, *model.graph.output]:
        dims = value.type.tensor_type.shape.dim
        shapes.setdefault(value.name, [d.dim_value if d.HasField("dim_value") else 0 for d in dims])
    macs = 0
    for node in model.graph.node:
        if node.op_type in ("Conv", "ConvInteger", "QLinearConv"):
            weight = shapes.get(node.input[3] if node.op_type == "QLinearConv" else node.input[1])
            output = shapes.get(node.output[0])
            if weight and output:
                # weight: (out_channels, in_channels / groups, kh, kw); output: (N, C, H, W).
                macs += _product(output[1:]) * _product(weight[1:])
        elif node.op_type in ("Gemm", "MatMul", "MatMulInteger", "QLinearMatMul"):
            output = shapes.get(node.output[0])
            first = shapes.get(node.input[0])
            if output and first:
                trans_a = any(a.name == "transA" and a.i for a in node.attribute)
                inner = first[-2] if trans_a and len(first) >= 2 else first[-1]
                # Everything but the batch axis is per face.
                macs += _product(output[1:]) * _product([inner])
    return macs


def count_macs_tflite(path: str | Path) -> int:
    """MACs per face of a TFLite model (CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED)."""
    from edge_runtime.backends.tflite_backend import tflite_interpreter_class

    interpreter_class, _ = tflite_interpreter_class()
    interpreter = interpreter_class(model_path=str(path))
    interpreter.allocate_tensors()
    shapes = {t["index"]: [int(d) for d in t["shape"]] for t in interpreter.get_tensor_details()}
    batch = max(1, shapes[interpreter.get_input_details()[0]["index"]][0])
    macs = 0
    for op in interpreter._get_ops_details():  # The only API that lists a graph's ops.
        name, inputs, outputs = op["op_name"], list(op["inputs"]), list(op["outputs"])
        if name not in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED") or len(inputs) < 2:
            continue
        output, weight = shapes.get(outputs[0], []), shapes.get(inputs[1], [])
        if not output or not weight:
            continue
        if name == "CONV_2D":  # weight (O, kh, kw, I), output (N, H, W, O)
            macs += _product(output) // batch * _product(weight[1:])
        elif name == "DEPTHWISE_CONV_2D":  # weight (1, kh, kw, O)
            macs += _product(output) // batch * _product(weight[1:3])
        else:  # weight (O, I), output (N, O)
            macs += _product(output) // batch * weight[-1]
    return macs


def count_macs_keras(path: str | Path) -> int:
    """MACs per face of a Keras model (Conv2D, DepthwiseConv2D, SeparableConv2D, Dense). Imports TensorFlow."""
    from edge_runtime.model_files.keras_file import load_keras_file

    model = load_keras_file(path)
    macs = 0
    for layer in _flat_layers(model):
        kind = type(layer).__name__
        if kind not in ("Conv2D", "DepthwiseConv2D", "SeparableConv2D", "Dense"):
            continue
        out = _product(layer.output.shape[1:])
        in_channels = int(layer.input.shape[-1])
        if kind == "Conv2D":
            kh, kw = layer.kernel_size
            macs += out * kh * kw * in_channels // max(1, getattr(layer, "groups", 1))
        elif kind == "DepthwiseConv2D":
            kh, kw = layer.kernel_size
            macs += out * kh * kw
        elif kind == "SeparableConv2D":
            kh, kw = layer.kernel_size
            spatial = _product(layer.output.shape[1:-1])
            macs += spatial * in_channels * kh * kw + out * in_channels
        else:
            macs += out * in_channels
    return macs


def _flat_layers(model):
    for layer in model.layers:
        if hasattr(layer, "layers"):
            yield from _flat_layers(layer)
        else:
            yield layer


# How MACs are counted for each backend's files, in the order `reference_model` prefers them:
# ONNX shape inference gives exact shapes, a TFLite graph needs LiteRT, Keras needs TensorFlow.
MAC_COUNTERS: dict[str, tuple[Callable[[str | Path], int], str]] = {
    "onnx": (count_macs_onnx, "counted from the ONNX graph (Conv, Gemm, MatMul), per face"),
    "tflite": (count_macs_tflite, "counted from the TFLite graph (CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED), per face"),
    "keras": (count_macs_keras, "counted from the Keras layers (Conv2D, DepthwiseConv2D, SeparableConv2D, Dense), per face"),
}


def count_macs(path: str | Path) -> tuple[int, str]:
    """MACs per face and the method used, by the backend that runs the file.

    Raises:
        ImportError: the package needed to read the graph is not installed.
        ValueError: a suffix no backend runs.
    """
    counter, method = MAC_COUNTERS[backend_for_path(path).name]  # ValueError for a suffix no backend runs
    return counter(path), method


def measure_peak_gflops(size: int = PEAK_MATRIX_SIZE, repeats: int = PEAK_REPEATS, clock=time.perf_counter) -> float:
    """Best-of-`repeats` float32 GFLOP/s of an (n x n) @ (n x n) numpy matmul.

    The BLAS thread count is whatever the process was started with (the benchmark sets
    OPENBLAS_NUM_THREADS / OMP_NUM_THREADS in a fresh subprocess for each thread count).
    """
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    a @ b  # warm-up: thread pool start, page faults
    best = float("inf")
    for _ in range(repeats):
        start = clock()
        a @ b
        best = min(best, clock() - start)
    return 2.0 * size**3 / best / 1e9 if best > 0 else 0.0


def measure_peak_gflops_onnxruntime(threads: int, size: int = PEAK_MATRIX_SIZE, repeats: int = PEAK_REPEATS,
                                    clock=time.perf_counter) -> float:
    """Best-of-`repeats` float32 GFLOP/s of the same matmul through ONNX Runtime's own kernels.

    numpy's BLAS may pick kernels for an older instruction set than the CPU has (the OpenBLAS
    wheel runs its Haswell AVX2 kernels on AVX-512 machines), which would put the "peak" below
    what the inference runtimes reach; ONNX Runtime's MLAS uses the widest the CPU offers.

    Raises:
        ImportError: onnx or onnxruntime is not installed.
    """
    import onnxruntime as ort
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("MatMul", ["a", "b"], ["c"])],
        "peak",
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, [size, size]) for name in ("a", "b")],
        [helper.make_tensor_value_info("c", TensorProto.FLOAT, [size, size])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8  # readable by every onnxruntime this project supports
    options = ort.SessionOptions()
    options.intra_op_num_threads = int(threads)
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(model.SerializeToString(), sess_options=options, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    feeds = {name: rng.standard_normal((size, size), dtype=np.float32) for name in ("a", "b")}
    session.run(None, feeds)  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = clock()
        session.run(None, feeds)
        best = min(best, clock() - start)
    return 2.0 * size**3 / best / 1e9 if best > 0 else 0.0


def measure_peak(threads: int) -> dict:
    """The CPU's float32 peak at `threads` threads: the best of numpy's BLAS and ONNX Runtime
    (when installed), each reported."""
    found = {"numpy": measure_peak_gflops()}
    try:
        found["onnxruntime"] = measure_peak_gflops_onnxruntime(threads)
    except ImportError:
        pass
    best = max(found, key=found.get)
    return {"gflops": found[best], "peak_source": best, "peak_by_library": found}


def floor_ms(macs: int, peak_gflops: float) -> float | None:
    """Milliseconds per face at the measured peak: 2 FLOPs per multiply-add."""
    if not macs or not peak_gflops:
        return None
    return 2.0 * macs / (peak_gflops * 1e9) * 1000.0


def reference_model(paths: list[Path]) -> Path | None:
    """The file to count MACs from: of the backend MAC_COUNTERS lists first, the most exact
    precision (float ONNX first: exact shapes, no quantisation nodes), then any ONNX, TFLite, Keras."""
    ranked = [(rank, Path(path)) for path in paths if (rank := _reference_rank(Path(path))) is not None]
    return min(ranked, key=lambda pair: (pair[0], pair[1].name.lower()))[1] if ranked else None


def _reference_rank(path: Path) -> tuple[int, int] | None:
    """(backend's place in MAC_COUNTERS, precision's place in PRECISIONS), read from the
    file's FORMATS row; a file of no known format ranks after its backend's known ones, and
    a suffix no backend runs not at all."""
    name = guess_format(path)
    if name in FORMAT_NAMES:
        row = get_format(name)
        backend, precision = row.backend, PRECISIONS.index(row.precision)
    else:
        try:
            backend, precision = backend_for_path(path).name, len(PRECISIONS)
        except ValueError:
            return None
    return list(MAC_COUNTERS).index(backend), precision
