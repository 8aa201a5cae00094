"""How many worker processes a command starts when not told."""

from __future__ import annotations

import os


def default_workers(*, reserved: int = 0, at_least: int = 1) -> int:
    """Up to 2 worker processes, leaving ``reserved`` cores to the main process (never fewer
    than ``at_least``): more did not pay on the 2-4 core machines this runs on."""
    return max(at_least, min(2, (os.cpu_count() or 1) - reserved))
