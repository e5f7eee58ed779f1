"""The decoded-data cache is keyed by the folder, not by how its path is spelt."""

from __future__ import annotations

import os

from fer_data.fer2013 import load_fer2013


def test_every_spelling_of_one_folder_shares_one_cache_file(fer_folder, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    link = tmp_path / "link-to-data"
    link.symlink_to(fer_folder, target_is_directory=True)
    monkeypatch.chdir(fer_folder.parent)
    spellings = [
        fer_folder,
        os.path.relpath(fer_folder),
        f"{fer_folder}/",
        f"{fer_folder.parent}/./{fer_folder.name}",
        link,
    ]
    sizes = {len(load_fer2013(path, cache_dir=cache).split("train")) for path in spellings}
    assert sizes == {7 * 20}
    assert len(list(cache.glob("fer2013-*.npz"))) == 1


def test_a_different_folder_gets_its_own_cache_file(fer_folder, tmp_path):
    cache = tmp_path / "cache"
    copy = tmp_path / "copy"
    copy.mkdir()
    for split in ("train", "test"):
        os.symlink(fer_folder / split, copy / split)  # same files, another folder
    load_fer2013(fer_folder, cache_dir=cache)
    load_fer2013(copy, cache_dir=cache)
    assert len(list(cache.glob("fer2013-*.npz"))) == 2


def test_tests_never_write_into_the_users_cache():
    from fer_data.fer2013 import default_cache_dir

    home_cache = os.path.join(os.path.expanduser("~"), ".cache")
    assert not str(default_cache_dir()).startswith(home_cache)
