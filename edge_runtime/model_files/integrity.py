"""Model integrity: a checksum over a model's bytes and its metadata, checked at load.

A model whose bytes changed (a worn SD card, an interrupted copy) often still loads and runs,
with shifted probabilities and no error. Every exported file therefore carries, in its
metadata, `checksum`: SHA-256 over the model file's bytes followed by the metadata itself as
canonical JSON (sorted keys, without the checksum). ONNX files keep their metadata inside, in
`metadata_props`, which a file cannot hash along with itself: for them the file's bytes less
the `metadata_props` records are hashed. Keras and TFLite files keep it in their JSON sidecar,
and the whole file is hashed. SHA-256 runs at about 1-2 GB/s, so checking a 2 MB model at load
takes milliseconds.

A file whose metadata has no checksum (exported by an earlier version) is loaded unchecked. ONNX
external data files are not covered (edge-convert never writes them; ONNX Runtime refuses any
that lie outside the model's folder).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path

from edge_runtime.model_files import onnx_props
from edge_runtime.model_files.metadata import ONNX_METADATA_KEY, MetadataError, sidecar_path
from edge_runtime.outputs.atomic import write_bytes_atomic, write_text_atomic

CHECKSUM_KEY = "checksum"
CHECKSUM_PREFIX = "sha256:"


class ChecksumError(MetadataError):
    """A model file's bytes or metadata do not match the checksum it was exported with."""


def compute_checksum(chunks: Iterable[bytes | memoryview], metadata: dict) -> str:
    """`sha256:<hex>` of the model's bytes (`chunks`) then its canonical metadata."""
    digest = hashlib.sha256()
    for chunk in chunks:
        digest.update(chunk)
    canonical = {key: value for key, value in metadata.items() if key != CHECKSUM_KEY}
    digest.update(json.dumps(canonical, sort_keys=True, separators=(",", ":")).encode("utf-8"))
    return CHECKSUM_PREFIX + digest.hexdigest()


def _is_onnx(path: Path) -> bool:
    return path.suffix.lower() == ".onnx"


def _hashed_chunks(path: Path, data: bytes) -> Iterable[bytes | memoryview]:
    return onnx_props.payload_chunks(data) if _is_onnx(path) else (data,)


def checksum_of_file(model_path: str | os.PathLike, metadata: dict) -> str:
    """The checksum `metadata` must carry for the model file at `model_path`.

    Raises:
        ChecksumError: an ONNX file whose structure is broken.
    """
    path = Path(model_path)
    data = path.read_bytes()
    try:
        return compute_checksum(_hashed_chunks(path, data), metadata)
    except onnx_props.WireFormatError as error:
        raise ChecksumError(f"{path}: damaged ONNX file ({error})") from None


def stamp_onnx(model_path: str | os.PathLike, metadata: dict) -> dict:
    """Writes `metadata` with its checksum into an ONNX file's `metadata_props`, in place.

    Only the metadata record changes; the graph's bytes stay as they are.

    Returns:
        The metadata with its checksum.
    """
    path = Path(model_path)
    stamped = {**metadata, CHECKSUM_KEY: checksum_of_file(path, metadata)}
    write_bytes_atomic(path, onnx_props.with_prop(path.read_bytes(), ONNX_METADATA_KEY, json.dumps(stamped, indent=2) + "\n"))
    return stamped


def stamp_model_file(model_path: str | os.PathLike) -> str:
    """Gives an existing model file a checksum of what it holds now, its metadata otherwise unchanged.

    For files exported before checksums existed, and for a model edited on purpose. ONNX files
    get it in `metadata_props`, others in their sidecar; the weights are not touched.

    Returns:
        The checksum.

    Raises:
        MetadataError: the file carries no metadata to add it to.
    """
    path = Path(model_path)
    metadata = _stored_metadata(path, path.read_bytes())
    if metadata is None:
        raise MetadataError(f"{path}: no readable metadata (ONNX metadata_props or {sidecar_path(path).name}) to stamp")
    if _is_onnx(path) and ONNX_METADATA_KEY in onnx_props.read_props(path.read_bytes()):
        return stamp_onnx(path, metadata)[CHECKSUM_KEY]
    stamped = {**metadata, CHECKSUM_KEY: checksum_of_file(path, metadata)}
    write_text_atomic(sidecar_path(path), json.dumps(stamped, indent=2) + "\n")
    return stamped[CHECKSUM_KEY]


def _stored_metadata(path: Path, data: bytes) -> dict | None:
    """The metadata the file carries (ONNX: inside, else the sidecar), or None when there is none to check."""
    text = None
    if _is_onnx(path):
        try:
            text = onnx_props.read_props(data).get(ONNX_METADATA_KEY)
        except onnx_props.WireFormatError:
            return None  # Not an ONNX file at all: ONNX Runtime says so in its own words.
    if text is None and sidecar_path(path).is_file():
        text = sidecar_path(path).read_text(encoding="utf-8", errors="replace")
    try:
        metadata = json.loads(text) if text is not None else None
    except json.JSONDecodeError:
        return None  # The backend reports malformed metadata in its own words.
    return metadata if isinstance(metadata, dict) else None


def verify_model_file(model_path: str | os.PathLike) -> bool:
    """Checks a model file against the checksum in its metadata.

    Returns:
        True when checked, False when the metadata carries no checksum.

    Raises:
        ChecksumError: one line naming the file, when the file or its metadata changed.
    """
    path = Path(model_path)
    data = path.read_bytes()
    metadata = _stored_metadata(path, data)
    if metadata is None or not metadata.get(CHECKSUM_KEY):
        return False
    try:
        actual = compute_checksum(_hashed_chunks(path, data), metadata)
    except onnx_props.WireFormatError as error:
        raise ChecksumError(f"{path}: damaged ONNX file ({error})") from None
    if actual != metadata[CHECKSUM_KEY]:
        raise ChecksumError(
            f"{path}: checksum mismatch: the model or its metadata changed since export (damaged storage or an "
            "incomplete copy?); copy or export it again, or turn verification off (--no-verify-model) if you edited it on purpose"
        )
    return True
