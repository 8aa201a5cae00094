"""Output that is not a terminal (a log file, a pipe, a Slurm job) keeps every number whole:
rich's default of 80 columns there squeezed tables and cut cells off with "…"."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

from rich.table import Table

from featcache.utils.progress import make_console

REPO = Path(__file__).resolve().parents[3]
CELLS = ["fused_calibrated_dynamic_image", "+12.345 [95% CI -15.678, +40.123] (p 0.0123)", "Optical-flow head (calibrated)",
         "98.765 [97.531, 99.999]", "selected at epoch 17 of 40 on val"]


def wide_table() -> Table:
    table = Table(*(f"column {i}" for i in range(len(CELLS))))
    table.add_row(*CELLS)
    return table


def test_a_wide_table_written_to_a_file_keeps_every_cell_whole():
    out = io.StringIO()
    make_console(file=out).print(wide_table())
    text = out.getvalue()
    assert "…" not in text
    for cell in CELLS:
        assert cell in text  # on one line, not folded or cut
    assert max(len(line) for line in text.splitlines()) > 150  # wider than an 80-column default


def test_a_wide_table_through_a_pipe_keeps_every_cell_whole():
    code = (
        "from tests.featcache.utils.test_progress import wide_table\n"
        "from featcache.utils.progress import make_console, console\n"
        "make_console().print(wide_table())\n"
        "console.print(wide_table())\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True,
                          env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "COLUMNS": "80"})
    for text in (done.stdout, done.stderr):
        assert "…" not in text and all(cell in text for cell in CELLS)
