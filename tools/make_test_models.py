"""Builds the checked-in test models: the tiny CNN of the `tiny_model` fixture, exported to ONNX
(fp32) and full-int8 TFLite (with its JSON sidecar) by `edge-convert`'s own code.

The runtime's tests load these files, so they run in a runtime-only install (no TensorFlow).
The exports carry the metadata the runtime reads and the checksum it verifies, exactly as
`edge-convert` writes them; rebuild them when the metadata format changes. Needs TensorFlow.

Usage (from the repository root, with `pip install -e ".[all]"`):

    python -m tools.make_test_models
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from convert.api import convert_model
from edge_runtime.model_files.metadata import sidecar_path
from tests.conftest import FIXTURE_MODELS
from tests.synthetic import write_folder
from tests.tiny_model import train_tiny_model

EXPORTS = {"onnx": "onnx-fp32", "tflite": "tflite-int8"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        model = train_tiny_model(work / "tiny.keras")
        faces = write_folder(work / "faces", train_per_class=20, test_per_class=6, seed=1)
        results = convert_model(model, list(EXPORTS.values()), work / "out", stem="tiny", calibration_data=faces, verify=False)
        exported = {result.format: result.path for result in results}
        for backend, fmt in EXPORTS.items():
            target = FIXTURE_MODELS[backend]
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(exported[fmt], target)
            if sidecar_path(exported[fmt]).is_file():
                shutil.copyfile(sidecar_path(exported[fmt]), sidecar_path(target))
            print(f"{target}: {target.stat().st_size} bytes")


if __name__ == "__main__":
    main()
