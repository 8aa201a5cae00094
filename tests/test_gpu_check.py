"""benchmarks/gpu_check.py: the one-command GPU check runs its whole table on the CPU at a tiny size,
and says in one line that there is no GPU when asked for one without it."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_check.py"
CHECKS = ("extract", "tvl1", "preprocess", "mining", "gan grid", "torchrun")


def run(*args):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=600)


def test_gpu_check_runs_every_path_on_the_cpu(tmp_path):
    done = run("--device", "cpu")
    assert done.returncode == 0, done.stdout + done.stderr
    table = [line for line in done.stdout.splitlines() if line.split() and line.split()[0] in {c.split()[0] for c in CHECKS}]
    assert {line[:11].strip() for line in table} == set(CHECKS)
    assert "FAILED" not in done.stdout and "all agree with their references" in done.stdout
    assert "same triplets" in done.stdout and "max diff: dynamic 0, flow 0 levels" in done.stdout


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is visible: the no-GPU message does not apply")
def test_gpu_check_without_a_gpu_says_so_in_one_line():
    done = run("--only", "mining")
    assert done.returncode == 1
    assert done.stdout.strip().count("\n") == 0 and "no CUDA GPU" in done.stdout
