"""Checks on the real FER-2013 copy in ../shared/fer2013 (opt in: pytest -m slow)."""

from __future__ import annotations

import pytest

from fer_data.fer2013 import load_fer2013
from tests.conftest import SHARED_FER

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not SHARED_FER.is_dir(), reason=f"{SHARED_FER} is not here"),
]


def test_real_counts_match_the_data_sets_readme(tmp_path):
    data = load_fer2013(SHARED_FER, cache_dir=tmp_path)
    assert data.counts() == {"train": 28_709, "val": 3_589, "test": 0}
    assert data.split("train").class_counts() == [3995, 436, 4097, 7215, 4965, 4830, 3171]
    assert data.split("val").class_counts() == [467, 56, 496, 895, 607, 653, 415]


@pytest.mark.parametrize("model_file", ["emotion_int8.tflite", "emotion_int8.onnx"])
def test_bundled_int8_model_keeps_its_card_accuracy(tmp_path, model_file):
    """The model card's PublicTest figures, through the runtime's own backend."""
    pytest.importorskip("onnxruntime" if model_file.endswith(".onnx") else "ai_edge_litert")
    from benchmarks.accuracy_bench import AccuracyConfig, run_accuracy
    from edge_runtime.model_files.bundled import MODELS_DIR

    model = MODELS_DIR / model_file
    single = run_accuracy(AccuracyConfig(data=SHARED_FER, model=model, split="val", flip_average=False))
    flipped = run_accuracy(AccuracyConfig(data=SHARED_FER, model=model, split="val", flip_average=True))
    assert single["n"] == flipped["n"] == 3_589
    assert single["accuracy"] >= 0.695
    assert flipped["accuracy"] >= 0.70
