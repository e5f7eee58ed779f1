"""An ONNX file's `metadata_props` (read and rewritten) and its graph's input and output names
(read), without the `onnx` package.

An ONNX file is one protobuf `ModelProto`. Its top-level fields are a handful of records (the
graph is one of them); `metadata_props` (field 14) are key/value records among them. Walking
only the top level lets the runtime read the metadata and hash everything else in a few
milliseconds, with onnxruntime alone installed, and lets a checksum be stamped into the file
without re-serialising the graph (whose bytes must stay exactly as they were hashed).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

METADATA_PROPS_FIELD = 14
GRAPH_FIELD = 7  # ModelProto.graph
# GraphProto's fields: initializer (TensorProto, its name is field 8), input and output
# (ValueInfoProto, its name is field 1).
_INITIALIZER_FIELD, _INPUT_FIELD, _OUTPUT_FIELD = 5, 11, 12
_TENSOR_NAME_FIELD, _VALUE_INFO_NAME_FIELD = 8, 1
_VARINT, _FIXED64, _LENGTH_DELIMITED, _FIXED32 = 0, 1, 2, 5


class WireFormatError(ValueError):
    """The bytes are not a well-formed protobuf message."""


@dataclass(frozen=True)
class Record:
    """One top-level field of the message: its number and where its bytes lie.

    Attributes:
        field: the protobuf field number.
        start: offset of the record's first byte (its tag).
        value_start: offset of the value (after the tag and, for strings, the length).
        end: offset just past the record.
    """

    field: int
    start: int
    value_start: int
    end: int


def _varint(data: bytes | memoryview, offset: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if offset >= len(data) or shift > 63:
            raise WireFormatError(f"truncated or overlong number at byte {offset}")
        byte = data[offset]
        value |= (byte & 0x7F) << shift
        offset, shift = offset + 1, shift + 7
        if not byte & 0x80:
            return value, offset


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        out.append(low | (0x80 if value else 0))
        if not value:
            return bytes(out)


def records(data: bytes | memoryview) -> Iterator[Record]:
    """The top-level records of a protobuf message, in file order.

    Raises:
        WireFormatError: a record runs past the end, or an unknown wire type.
    """
    offset = 0
    while offset < len(data):
        start = offset
        key, offset = _varint(data, offset)
        field, wire_type = key >> 3, key & 7
        if wire_type == _VARINT:
            _, end = _varint(data, offset)
            value_start = offset
        elif wire_type == _LENGTH_DELIMITED:
            length, value_start = _varint(data, offset)
            end = value_start + length
        elif wire_type in (_FIXED64, _FIXED32):
            value_start, end = offset, offset + (8 if wire_type == _FIXED64 else 4)
        else:
            raise WireFormatError(f"unexpected wire type {wire_type} at byte {start}")
        if field == 0 or end > len(data):
            raise WireFormatError(f"record at byte {start} runs past the end of the file")
        yield Record(field, start, value_start, end)
        offset = end


def _entry(data: bytes | memoryview, record: Record) -> tuple[str, str]:
    """The (key, value) of a `StringStringEntryProto` record."""
    found = {1: "", 2: ""}
    body = data[record.value_start : record.end]
    for inner in records(body):
        if inner.field in found:
            found[inner.field] = bytes(body[inner.value_start : inner.end]).decode("utf-8", errors="replace")
    return found[1], found[2]


def read_props(data: bytes | memoryview) -> dict[str, str]:
    """The `metadata_props` of a serialised ModelProto."""
    return dict(_entry(data, record) for record in records(data) if record.field == METADATA_PROPS_FIELD)


def payload_chunks(data: bytes | memoryview) -> Iterator[memoryview]:
    """Every top-level record except `metadata_props`, as views: the bytes a checksum covers."""
    view = memoryview(data)
    for record in records(view):
        if record.field != METADATA_PROPS_FIELD:
            yield view[record.start : record.end]


def with_prop(data: bytes, key: str, value: str) -> bytes:
    """The file with `metadata_props[key]` set to `value`; every other byte kept as it was."""
    entry = _string_field(1, key) + _string_field(2, value)
    new_record = _encode_varint(METADATA_PROPS_FIELD << 3 | _LENGTH_DELIMITED) + _encode_varint(len(entry)) + entry
    parts, replaced = [], False
    for record in records(data):
        if record.field == METADATA_PROPS_FIELD and _entry(data, record)[0] == key:
            if not replaced:
                parts.append(new_record)
                replaced = True
            continue
        parts.append(data[record.start : record.end])
    if not replaced:
        parts.append(new_record)
    return b"".join(parts)


def _string_field(field: int, text: str) -> bytes:
    raw = text.encode("utf-8")
    return _encode_varint(field << 3 | _LENGTH_DELIMITED) + _encode_varint(len(raw)) + raw


def _name(data: bytes | memoryview, record: Record, field: int) -> str:
    """The string `field` inside the message that `record` holds ("" when it has none)."""
    body = data[record.value_start : record.end]
    for inner in records(body):
        if inner.field == field:
            return bytes(body[inner.value_start : inner.end]).decode("utf-8", errors="replace")
    return ""


def graph_io_names(data: bytes | memoryview) -> tuple[list[str], list[str]]:
    """The input and output names of a serialised ModelProto's graph, in file order.

    Inputs that an initializer fills (older exporters list the weights as inputs too) are left
    out: what is left is what a caller feeds. Only the graph's top level is walked, not its
    nodes or weights.

    Raises:
        WireFormatError: the bytes are not a well-formed protobuf message.
    """
    view = memoryview(data)
    inputs, outputs, weights = [], [], set()
    for record in records(view):
        if record.field != GRAPH_FIELD:
            continue
        graph = view[record.value_start : record.end]
        for inner in records(graph):
            if inner.field == _INPUT_FIELD:
                inputs.append(_name(graph, inner, _VALUE_INFO_NAME_FIELD))
            elif inner.field == _OUTPUT_FIELD:
                outputs.append(_name(graph, inner, _VALUE_INFO_NAME_FIELD))
            elif inner.field == _INITIALIZER_FIELD:
                weights.add(_name(graph, inner, _TENSOR_NAME_FIELD))
    return [name for name in inputs if name not in weights], outputs
