"""Checks on the real FER-2013 copy in ../shared/fer2013 (opt in: pytest -m slow)."""

from __future__ import annotations

import pytest

from edge_runtime.fer2013 import load_fer2013
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
