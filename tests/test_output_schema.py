"""docs/output-schema.md describes exactly what the record writers write, at their version."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np

from edge_runtime.labels import LABELS
from edge_runtime.outputs.writers import RECORD_SCHEMA_VERSION, Outputs
from edge_runtime.pipeline.emotion_detector import Face
from edge_runtime.pipeline.stream import FrameResult

SCHEMA_DOC = Path(__file__).resolve().parents[1] / "docs" / "output-schema.md"


def documented_names(section: str) -> list[str]:
    """The first column of the table under the doc's `## <section>` heading, in order."""
    text = SCHEMA_DOC.read_text(encoding="utf-8").split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `([^`]+)` \|", text, re.M)


def written(tmp_path: Path) -> tuple[dict, list[str]]:
    """One record as the JSONL writer writes it, and the CSV writer's header, from a run's frame."""
    probabilities = dict.fromkeys(LABELS, 1 / len(LABELS))
    face = Face((1, 2, 3, 4), 1, "happy", 0.5, probabilities, False, score=0.9)
    result = FrameResult(0, 0.0, "clip.mp4", [face], np.zeros((8, 8), np.uint8))
    outputs = Outputs(tmp_path / "o.jsonl", tmp_path / "o.csv", None)
    outputs.write(result.index, result.time, result.faces, None, result.record_context("yunet"))
    outputs.close()
    (record,) = [json.loads(line) for line in (tmp_path / "o.jsonl").read_text().splitlines()]
    with open(tmp_path / "o.csv", newline="") as handle:
        header = next(csv.reader(handle))
    return record, header


def test_the_doc_lists_every_jsonl_field_in_order(tmp_path):
    record, _ = written(tmp_path)
    assert documented_names("JSONL record") == list(record)


def test_the_doc_lists_every_csv_column_in_order(tmp_path):
    _, header = written(tmp_path)
    documented = documented_names("CSV columns")
    assert documented[-1] == "p_<label>"
    assert [*documented[:-1], *(f"p_{label}" for label in LABELS)] == header


def test_the_doc_states_the_writers_schema_version():
    (version,) = re.findall(r"^Record schema version: (\S+)$", SCHEMA_DOC.read_text(encoding="utf-8"), re.M)
    assert version == RECORD_SCHEMA_VERSION
    assert f"**Version {RECORD_SCHEMA_VERSION}.**" in SCHEMA_DOC.read_text(encoding="utf-8")  # and what it changed


def test_a_frame_classified_whole_names_no_detector():
    result = FrameResult(0, None, "crop.png", [], np.zeros((48, 48), np.uint8), whole=True)
    assert result.record_context("yunet") == {"source": "crop.png", "detector": None}
    detected = FrameResult(0, None, "photo.jpg", [], np.zeros((48, 48), np.uint8))
    assert detected.record_context("yunet") == {"source": "photo.jpg", "detector": "yunet"}
