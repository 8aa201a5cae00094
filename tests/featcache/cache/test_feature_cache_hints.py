"""Hints repeat the user's own options (issue 25): a missing cache names the --cache it looked in."""

from __future__ import annotations

import pytest

from featcache.cache.feature_cache import find_cache
from featcache.errors import CacheError


def test_missing_cache_hint_keeps_the_users_cache_folder(tmp_path):
    folder = tmp_path / "my-cache"
    folder.mkdir()
    with pytest.raises(CacheError, match=rf"run: featcache extract ROOT --modality dynamic --cache {folder}$"):
        find_cache(folder, "dynamic")
    with pytest.raises(CacheError, match=rf"--modality still --backbone resnet50 --cache {folder}$"):
        find_cache(folder, "still", "resnet50")
