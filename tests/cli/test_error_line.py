"""A featcache error raised in a DataLoader worker still ends the CLI with its own one line."""

from __future__ import annotations

import pytest
from torch.utils.data import DataLoader, Dataset

from cli.app import error_line
from featcache.errors import CacheError, DatasetError

MESSAGE = "/data/stills/test/run/x.jpg: cannot decode the image (truncated file); fix or remove it"


class Corrupt(Dataset):
    def __len__(self) -> int:
        return 2

    def __getitem__(self, index: int):
        raise DatasetError(MESSAGE)


def test_an_error_from_a_dataloader_worker_gives_its_own_line():
    with pytest.raises(DatasetError) as caught:
        list(DataLoader(Corrupt(), num_workers=1))
    assert str(caught.value).startswith("Caught DatasetError in DataLoader worker process 0.")  # torch's wrapper
    assert error_line(caught.value) == MESSAGE


def test_a_plain_error_gives_its_first_line():
    assert error_line(CacheError("cache/still-b.h5: damaged\nmore detail")) == "cache/still-b.h5: damaged"
    assert error_line(CacheError("")) == "CacheError"
