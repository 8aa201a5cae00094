"""Checksums end to end: a flipped byte anywhere in a cache's data is caught on the next read,
named by file, dataset and rows; old caches without checksums still open, with one notice."""

from __future__ import annotations

import shutil

import h5py
import numpy as np
import pytest

from featcache.cache import schema
from featcache.cache.feature_cache import FeatureCache
from featcache.cache.synthetic import write_feature_cache
from featcache.cache.temporal_cache import read_temporal
from featcache.cache.verify import verify_file
from featcache.data.check import check_cache_folder, is_cache_folder
from featcache.errors import CacheError


def feature_cache(path, rows: int = 1000, dim: int = 32, seed: int = 0):
    rng = np.random.default_rng(seed)
    return write_feature_cache(path, modality="still", backbone="b", classes=["a", "b"],
                               features=rng.normal(size=(rows, dim)), labels=rng.integers(0, 2, rows),
                               split=rng.integers(0, 3, rows).astype(np.int8))


def storage(path, name: str) -> list[tuple[int, int, int]]:
    """(first row, file offset, bytes) of every chunk of dataset ``name`` (one for a contiguous one)."""
    with h5py.File(path, "r") as f:
        ds = f[name]
        if ds.chunks is None:
            return [(0, ds.id.get_offset(), ds.id.get_storage_size())]
        chunks = [ds.id.get_chunk_info(i) for i in range(ds.id.get_num_chunks())]
        return [(info.chunk_offset[0], info.byte_offset, info.size) for info in chunks]


def flip(path, offset: int, bit: int = 0x04) -> None:
    with open(path, "r+b") as fh:
        fh.seek(offset)
        byte = fh.read(1)[0]
        fh.seek(offset)
        fh.write(bytes([byte ^ bit]))


def test_feature_caches_are_written_with_checksums(tmp_path):
    path = feature_cache(tmp_path / "still-b.h5")
    with h5py.File(path, "r") as f:
        for name in ("features", "labels", "split", "instance"):
            sums, block_rows = schema.stored_checksums(f[name])
            assert block_rows == 256 and len(sums) == 4  # 1000 rows
        assert f["features"].chunks is None  # contiguous: the fastest to load
        assert schema.stored_checksums(f["source"]) is None  # text: no checksum
    assert len(FeatureCache.open(path).split("train")) > 0


def test_a_flipped_byte_anywhere_in_the_features_is_caught_and_named(tmp_path):
    good = feature_cache(tmp_path / "good.h5")
    (_, start, size), = storage(good, "features")
    assert size == 1000 * 32 * 4
    rng = np.random.default_rng(7)
    for trial in range(8):  # random offsets inside the feature data's storage, every block reached
        offset = start + int(rng.integers(0, size // 4)) + trial * (size // 8) // 2
        first = (offset - start) // (32 * 4) // 256 * 256
        damaged = tmp_path / f"still-{trial}.h5"
        shutil.copy(good, damaged)
        flip(damaged, offset, bit=1 << int(rng.integers(0, 8)))
        with pytest.raises(CacheError) as caught:
            FeatureCache.open(damaged)
        last = min(first + 256, 1000) - 1
        assert str(caught.value).startswith(f"{damaged}: dataset /features rows {first}-{last} ({last + 1 - first} of 1000) "
                                            "fail their checksum")
        assert "rerun featcache extract with --restart" in str(caught.value)


def test_the_direct_read_equals_hdf5s_and_refuses_damage(tmp_path, monkeypatch):
    """The fast path (contiguous data read straight from the file, each piece summed by a helper
    thread while the next is read) gives exactly what HDF5 reads, and hands a damaged dataset back
    to HDF5's path to be named, whichever piece the damage is in."""
    monkeypatch.setattr(schema, "RAW_PIECE_BYTES", 1 << 18)
    path = feature_cache(tmp_path / "still-b.h5", rows=5000, dim=96)  # 1.9 MB: ten pieces of 512 rows
    middle = tmp_path / "middle.h5"
    shutil.copy(path, middle)
    with h5py.File(path, "r") as f:
        for name in ("features", "labels", "split", "instance"):
            direct = schema._read_raw_checked(f[name], *schema.stored_checksums(f[name]))
            assert direct is not None and direct.dtype == f[name].dtype
            np.testing.assert_array_equal(direct, f[name][()])
    (_, start, size), = storage(path, "features")
    flip(path, start + size - 1)  # the last byte: the short last block
    with h5py.File(path, "r") as f:
        assert schema._read_raw_checked(f["features"], *schema.stored_checksums(f["features"])) is None
    with pytest.raises(CacheError, match="dataset /features rows 4864-4999"):
        FeatureCache.open(path)
    flip(middle, start + 2600 * 96 * 4)  # row 2600, in a middle piece
    with h5py.File(middle, "r") as f:
        assert schema._read_raw_checked(f["features"], *schema.stored_checksums(f["features"])) is None
    with pytest.raises(CacheError, match="dataset /features rows 2560-2815"):
        FeatureCache.open(middle)


def test_a_damaged_label_is_caught_too(tmp_path):
    path = feature_cache(tmp_path / "still-b.h5")
    (_, start, size), = storage(path, "labels")
    flip(path, start + size // 2)  # row 500
    with pytest.raises(CacheError, match="dataset /labels rows 256-511"):
        FeatureCache.open(path)


def test_an_old_cache_without_checksums_opens_with_one_notice(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(schema, "CHECKSUMS", False)
    path = feature_cache(tmp_path / "still-old.h5")
    monkeypatch.undo()
    with h5py.File(path, "r") as f:
        assert not f["features"].fletcher32
    FeatureCache.open(path)
    FeatureCache.open(path)
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(f"note: {path} has no checksums")
    assert verify_file(path).unchecked == ["/features", "/instance", "/labels", "/split"]


def temporal_file(path, rows: int = 6):
    """temporal.h5 with /dynamic written as temporal_writer writes it (gzip + Fletcher-32, one row a chunk)."""
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        schema.write_root_attrs(f, modality="temporal", classes=["a", "b"], preprocessing={"size": [8, 8]})
        group = f.create_group("dynamic")
        schema.write_root_attrs(group, modality="dynamic", classes=["a", "b"], preprocessing={})
        group.create_dataset("data", data=rng.integers(0, 256, (rows, 8, 8, 3), dtype=np.uint8), chunks=(1, 8, 8, 3),
                             compression="gzip", compression_opts=1, fletcher32=schema.checksum_filter())
        schema.write_rows(group, labels=np.arange(rows) % 2, split=np.zeros(rows), source=[f"v{i}" for i in range(rows)],
                          instance=np.arange(rows))
        schema.mark_complete(f)
    return path


def test_a_flipped_byte_in_temporal_h5_names_the_row(tmp_path):
    path = temporal_file(tmp_path / "temporal.h5")
    first, start, size = storage(path, "dynamic/data")[3]
    flip(path, start + size // 2)
    with read_temporal(path, "dynamic") as data:
        data.row(2)
        with pytest.raises(CacheError, match=r"temporal.h5: dataset /dynamic/data rows 3 \(1 of 6\) fail their checksum.*prepare"):
            data.row(first)


def test_data_check_deep_verifies_every_cache_in_a_folder(tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    feature_cache(cache / "still-b.h5")
    temporal_file(cache / "temporal.h5")
    assert is_cache_folder(cache)
    assert all(c.ok for c in check_cache_folder(cache, deep=True, progress=False))
    _, start, size = storage(cache / "still-b.h5", "features")[0]
    flip(cache / "still-b.h5", start + 512 * 32 * 4 + 3)
    checks = {c.path.name: c for c in check_cache_folder(cache, deep=True, progress=False)}
    assert checks["temporal.h5"].ok
    assert checks["still-b.h5"].problems == [
        f"{cache / 'still-b.h5'}: dataset /features rows 512-767 (256 of 1000) fail their checksum: the file is "
        "damaged on disk; rerun featcache extract with --restart to write it again"]
    assert all(c.ok for c in check_cache_folder(cache, deep=False, progress=False))  # opening reads no chunk
