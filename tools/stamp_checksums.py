"""Gives model files a checksum of what they hold now, without touching their weights.

    python tools/stamp_checksums.py edge_runtime/models/emotion*.onnx edge_runtime/models/*.tflite

For files exported before checksums existed, and for a model edited on purpose: the runtime
refuses a file whose bytes no longer match its checksum (see `edge_runtime.model_files.integrity`).
ONNX files get the checksum in their `metadata_props`, Keras and TFLite files in their sidecar.
"""

from __future__ import annotations

import sys

from edge_runtime.model_files.integrity import stamp_model_file
from edge_runtime.model_files.metadata import MetadataError


def main(paths: list[str]) -> int:
    if not paths:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    for path in paths:
        try:
            print(f"{path}: {stamp_model_file(path)}")
        except MetadataError as error:
            print(f"stamp_checksums: error: {error}", file=sys.stderr)
            return 1
        except OSError as error:
            print(f"stamp_checksums: error: {path}: {error.strerror or error}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
