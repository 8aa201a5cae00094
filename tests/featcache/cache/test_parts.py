"""The one resumable-parts mechanism (prepare, extract and keyframes use it): one policy on a
settings mismatch, atomic parts, torn or foreign parts read as missing."""

from __future__ import annotations

import json

import numpy as np
import pytest

from featcache.cache.parts import open_parts, part_path, parts_folder, read_part, write_part
from featcache.errors import CacheError


def test_same_settings_resume_other_settings_stop_and_restart_discards(tmp_path):
    folder = parts_folder(tmp_path / "x.h5")
    assert folder.name == "x.h5.parts"
    open_parts(folder, {"size": (32, 40)})
    assert json.loads((folder / "settings.json").read_text()) == {"size": [32, 40]}
    write_part(part_path(folder, "videos/a.avi"), {"data": np.arange(3)})
    open_parts(folder, {"size": [32, 40]})  # the same settings as read back from JSON: resumed
    assert part_path(folder, "videos/a.avi").exists()
    with pytest.raises(CacheError) as raised:
        open_parts(folder, {"size": [64, 80]}, what="prepare", describe=lambda s: f"size={s and s['size']}")
    message = str(raised.value)
    assert "\n" not in message and str(folder) in message and "--restart" in message
    assert "holds an unfinished prepare with other settings (size=[32, 40]; now size=[64, 80])" in message
    assert part_path(folder, "videos/a.avi").exists()  # never wiped without --restart
    open_parts(folder, {"size": [64, 80]}, restart=True)
    assert not part_path(folder, "videos/a.avi").exists()
    assert json.loads((folder / "settings.json").read_text()) == {"size": [64, 80]}


def test_empty_folder_left_before_its_marker_is_a_fresh_start(tmp_path):
    folder = tmp_path / "x.h5.parts"
    folder.mkdir()
    open_parts(folder, {"k": 1}, marker="identity.json")
    assert json.loads((folder / "identity.json").read_text()) == {"k": 1}


def test_torn_or_incomplete_parts_read_as_missing(tmp_path):
    part = tmp_path / "p.npz"
    assert read_part(part) is None
    write_part(part, {"source": np.array("a"), "flow": np.ones((2, 3), np.uint8)}, compressed=True)
    assert read_part(part, ("source",))["source"] == "a"
    assert read_part(part, ("source",), require=("dynamic",)) is None
    part.write_bytes(part.read_bytes()[: part.stat().st_size // 2])
    assert read_part(part) is None
    assert not list(tmp_path.glob("*.tmp"))
