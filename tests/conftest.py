"""Shared test fixtures.

Real clips and photos live in ``../shared/data/real`` beside the repository (or wherever
``FEATCACHE_REAL_DATA`` points). A user's clone has no such folder: tests that need it
are skipped cleanly through the ``real_data`` fixture.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
REAL_DATA = Path(os.environ.get("FEATCACHE_REAL_DATA", REPO_ROOT.parent / "shared" / "data" / "real"))

# One intra-op thread for the whole suite: its tensors and models are tiny, and extra
# OpenMP threads only spin (measured up to ~10x slower on a busy 2-core machine).
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def real_data() -> Path:
    """``../shared/data/real`` (read-only); skips the test when it is absent."""
    if not (REAL_DATA / "manifest.csv").exists():
        pytest.skip(f"real test data not found at {REAL_DATA}")
    return REAL_DATA


@pytest.fixture(scope="session")
def trained_runs(tmp_path_factory):
    """A GAN, a classifier, a TSN and a fine-tuning run on a tiny dataset (tests/predict_fixtures.py)."""
    from tests.predict_fixtures import build_trained_runs

    return build_trained_runs(tmp_path_factory.mktemp("trained-runs"))


@pytest.fixture(scope="session")
def video_run(tmp_path_factory):
    """(dataset root, run folder) of a temporal model fine-tuned on prepared videos (tests/predict_fixtures.py)."""
    from tests.predict_fixtures import build_video_run

    return build_video_run(tmp_path_factory.mktemp("video-run"))
