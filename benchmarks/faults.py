"""Every fault of issue #24 on a tiny synthetic set, with a table: fault, command, outcome, what was kept, pass.

    sudo python benchmarks/faults.py [--seed 0] [--keep DIR]

A full disk (a tmpfs with a filler file leaving half of what the command writes) during prepare,
extract and train-head, then a rerun once the filler is gone; a read-only folder (a read-only
tmpfs) for report and extract; a flipped byte in a feature cache (train-head and data check
--deep) and in temporal.h5 (extract leaves the row out); a broken metrics.json and an unloadable
model.pt (report); kill -9 at a random point of train-head, grid and finetune, then a rerun whose
metrics must equal an uninterrupted run with the same seed. A fault passes when the command ends
with ONE error line and no traceback (or goes on, naming what it left out) and the rerun finishes.
Mounting needs root (as in CI); without it the mount rows say so and fail.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from featcache.cache.synthetic import write_synthetic_caches  # noqa: E402

ROWS: list[tuple[str, str, str, str, bool]] = []
HEAD_SETS = ["still_epochs=5", "still_batch_size=32", "dimred_epochs=3", "dimred_batch_size=32", "d0=32", "d1=16",
             "d2=32", "epochs=5", "batch_size=32", "still_min_steps=1", "dimred_min_steps=1", "min_steps=1"]
EXTRACT = ["--backbone", "efficientnet-lite0", "--weights", "random", "--crop", "32", "--resize", "32",
           "--device", "cpu", "--shard-size", "2", "--workers", "0"]
PREPARE = ["--size", "32x40", "--flow", "dis", "--workers", "1"]


def sets(items) -> list[str]:
    return [a for item in items for a in ("--set", item)]


def featcache(*args, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "COLUMNS": "250"}
    return subprocess.run([sys.executable, "-m", "featcache", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=timeout)


def popen(*args) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "COLUMNS": "250"}
    return subprocess.Popen([sys.executable, "-m", "featcache", *map(str, args)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=env, start_new_session=True)


def error_line(done: subprocess.CompletedProcess) -> str | None:
    """The run's one error line when it failed with exactly one and no traceback, else None."""
    lines = [line for line in done.stderr.splitlines() if line.startswith("featcache: error:")]
    ok = done.returncode != 0 and len(lines) == 1 and "Traceback" not in done.stderr
    return lines[0][len("featcache: error: "):] if ok else None


def row(fault: str, command: str, outcome: str, kept: str, ok: bool) -> None:
    ROWS.append((fault, command, outcome, kept, ok))
    print(f"[{'pass' if ok else 'FAIL'}] {fault} / {command}: {outcome}", flush=True)


def mount(folder: Path, size: str, read_only: bool = False) -> bool:
    folder.mkdir(parents=True, exist_ok=True)
    options = f"size={size}" + (",ro" if read_only else "")
    return subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True).returncode == 0


def unmount(folder: Path) -> None:
    subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def folder_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def comparable(metrics: dict, *paths: Path) -> str:
    """metrics.json without what differs between two identical runs: timings, the run's own paths and
    whether the dim-reduction network and still model were trained or reused from the cache (the same ones)."""
    def clean(value):
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items() if k not in ("seconds", "dimred_source", "still_source")}
        if isinstance(value, list):
            return [clean(v) for v in value]
        if isinstance(value, str):
            for path in paths:
                value = value.replace(str(path), "<run>")
        return value
    return json.dumps(clean(metrics), sort_keys=True)


# -- a full disk and a read-only folder -----------------------------------------------------------------
def full_disk(work: Path, name: str, args_for, measure: Path, written: Path, check) -> None:
    """Run ``args_for(folder)`` once on a roomy disk to size what it writes (``measure``), then on a
    tmpfs leaving half of that, then again once the filler is gone (it must resume and finish)."""
    reference = work / f"ref-{name}"
    done = featcache(*args_for(reference))
    need = folder_size(reference / measure) if done.returncode == 0 else 0
    fs = work / f"full-{name}"
    if not need or not mount(fs, "64m"):
        row("full disk", name, f"could not set up (rc {done.returncode}, root needed to mount)", "-", False)
        return
    try:
        filler = fs / "filler"
        free = shutil.disk_usage(fs).free
        with open(filler, "wb") as fh:
            fh.truncate(0)
            os.posix_fallocate(fh.fileno(), 0, max(free - need // 2, 1))
        failed = featcache(*args_for(fs))
        line = error_line(failed)
        kept = folder_size(fs / written)
        filler.unlink()
        rerun = featcache(*args_for(fs))
        ok = line is not None and "no space left on device" in line and rerun.returncode == 0 and check(fs, reference)
        row("full disk", name, line or f"rc {failed.returncode}: {failed.stderr.strip()[-300:]}",
            f"{kept} bytes under {written}; rerun after freeing space: {'finished' if rerun.returncode == 0 else 'FAILED'}", ok)
    finally:
        unmount(fs)


def read_only(work: Path, name: str, args, expect: str) -> None:
    fs = work / f"ro-{name}"
    if not mount(fs, "64k", read_only=True):
        row("read-only folder", name, "could not mount (root needed)", "-", False)
        return
    try:
        done = featcache(*args(fs))
        line = error_line(done)
        row("read-only folder", name, line or f"rc {done.returncode}: {done.stderr.strip()[-300:]}",
            "nothing written", line is not None and "read-only file system" in line and expect in line)
    finally:
        unmount(fs)


# -- bit flips --------------------------------------------------------------------------------------------
def flip_byte(path: Path, dataset: str, row_index: int) -> None:
    """Flip one bit inside ``dataset``'s stored bytes of row ``row_index`` (its chunk, or its contiguous storage)."""
    import h5py

    with h5py.File(path, "r") as f:
        ds = f[dataset]
        if ds.chunks:
            info = ds.id.get_chunk_info(row_index)  # temporal.h5: one row a chunk
            offset = info.byte_offset + info.size // 2
        else:
            row_bytes = ds.dtype.itemsize * int(ds.size // ds.shape[0])
            offset = ds.id.get_offset() + row_index * row_bytes + row_bytes // 3
    with open(path, "r+b") as fh:
        fh.seek(offset)
        byte = fh.read(1)[0]
        fh.seek(offset)
        fh.write(bytes([byte ^ 0x10]))


def flipped_feature_cache(work: Path, caches: Path) -> None:
    damaged = work / "damaged-cache"
    shutil.copytree(caches, damaged)
    flip_byte(damaged / "still-synthetic.h5", "features", 150)
    done = featcache("train-head", "gan", "--cache", damaged, "--temporal", "flow", "--out", work / "runs-damaged",
                     "--device", "cpu", *sets(HEAD_SETS))
    line = error_line(done)
    row("flipped byte in a feature cache", "train-head", line or f"rc {done.returncode}", "nothing trained",
        line is not None and "/features rows 0-255" in line and "fail their checksum" in line)
    check = featcache("data", "check", damaged, "--deep")
    named = [s for s in check.stderr.splitlines() if s.startswith("problem:")]
    row("flipped byte in a feature cache", "data check --deep", named[0][9:] if named else f"rc {check.returncode}",
        "-", check.returncode == 1 and len(named) == 1 and "/features rows 0-255" in named[0])


def flipped_temporal(work: Path, root: Path, cache: Path) -> None:
    import h5py

    damaged = work / "damaged-temporal"
    damaged.mkdir()
    shutil.copy(cache / "temporal.h5", damaged / "temporal.h5")
    with h5py.File(damaged / "temporal.h5", "r") as f:
        rows = f["dynamic/data"].shape[0]
    flip_byte(damaged / "temporal.h5", "dynamic/data", 3)
    done = featcache("extract", root, "--modality", "dynamic", "--cache", damaged, *EXTRACT)
    named = [s for s in (done.stdout + done.stderr).splitlines() if "fail their checksum" in s]
    with h5py.File(damaged / "dynamic-efficientnet-lite0.h5", "r") if done.returncode == 0 else open(os.devnull) as f:
        written = f["features"].shape[0] if done.returncode == 0 else -1
    row("flipped byte in temporal.h5", "extract --modality dynamic",
        (named[0].strip()[:160] if named else f"rc {done.returncode}"), f"{written} of {rows} rows (row 3 left out)",
        done.returncode == 0 and written == rows - 1 and bool(named) and "rows 3 " in named[0])


# -- damaged run folders ----------------------------------------------------------------------------------
def damaged_runs(work: Path, runs: Path) -> None:
    """A copy of finished runs with one metrics.json broken and one model.pt truncated: report names both."""
    copy = work / "damaged-runs"
    shutil.copytree(runs, copy)
    metrics = sorted(copy.rglob("metrics.json"))
    models = sorted(p for p in copy.rglob("model.pt") if p.parent != metrics[0].parent)
    metrics[0].write_text('{"method": "gan", "still"')  # cut mid-write
    models[0].write_bytes(models[0].read_bytes()[: models[0].stat().st_size // 2])
    done = featcache("report", copy, "--out", work / "report-damaged", "--no-plots")
    skipped = [s[len("skipped: "):] for s in done.stderr.splitlines() if s.startswith("skipped: ")]
    count = next((s for s in (done.stdout + done.stderr).splitlines() if "run folder(s) read" in s), "")
    found = len(metrics) + len(set(p.parent for p in copy.rglob("model.pt")) - set(m.parent for m in metrics))
    for fault, path in (("broken metrics.json", metrics[0]), ("unloadable model.pt", models[0])):
        named = [s for s in skipped if s.startswith(str(path))]
        row(fault, "report", named[0][:160] if named else f"rc {done.returncode}: not named", count,
            done.returncode == 0 and len(named) == 1 and f"{found - 2} run folder(s) read; 2 skipped" in count)


# -- kill -9 and resume -------------------------------------------------------------------------------------
def wait_for(process: subprocess.Popen, path: Path) -> float:
    """Seconds until ``path`` exists (or the process ends)."""
    t0 = time.perf_counter()
    while not path.exists() and process.poll() is None:
        time.sleep(0.05)
    return time.perf_counter() - t0


def killed(args_for, work: Path, name: str, rng: random.Random, marks: tuple[str, str], finished, read_metrics) -> None:
    """An uninterrupted run; the same run killed (SIGKILL) at a random point of its training (between
    the first file it writes and its last, ``marks``, timed on the uninterrupted run) and rerun: the
    metrics must be the same."""
    reference, victim = work / f"{name}-uninterrupted", work / f"{name}-killed"
    process = popen(*args_for(reference))
    wait_for(process, reference / marks[0])
    training = wait_for(process, reference / marks[1])
    if process.wait():
        row("kill -9", name, "the uninterrupted run failed", "-", False)
        return
    process = popen(*args_for(victim))
    wait_for(process, victim / marks[0])
    delay = rng.uniform(0.1, 0.9) * training
    time.sleep(delay)
    alive = process.poll() is None
    if alive:
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    kept = finished(victim)
    rerun = featcache(*args_for(victim))
    same = rerun.returncode == 0 and read_metrics(reference, reference) == read_metrics(victim, victim)
    outcome = (f"killed {delay:.1f} s into {training:.1f} s of training" if alive else "finished before the kill") + \
              f"; rerun {'finished' if rerun.returncode == 0 else 'FAILED'}, metrics {'equal' if same else 'DIFFER'}"
    row("kill -9", name, outcome, kept, same and alive)


def head_args(caches: Path):
    return lambda out: ["train-head", "gan", "--cache", caches, "--temporal", "flow", "--out", out, "--device", "cpu",
                        *sets(HEAD_SETS)]


def grid_args(caches: Path):
    return lambda out: ["grid", "gan", "--cache", caches, "--temporal", "flow", "--out", out, "--device", "cpu",
                        "--max-group", "1", "--set", "lr=0.001,0.002,0.003", *sets(HEAD_SETS)]


def finetune_args(root: Path, cache: Path):
    return lambda out: ["finetune", "still", root, "--cache", cache, "--out", out, "--model", Path(out) / "still.pt",
                        "--backbone", "efficientnet-lite0", "--weights", "random", "--epochs", "3", "--batch-size", "4",
                        "--crop", "32", "--resize", "36", "--device", "cpu", "--workers", "0"]


def one_metrics(run: Path, base: Path) -> str:
    return comparable(json.loads((run / "metrics.json").read_text()), base)


def grid_metrics(out: Path, base: Path) -> str:
    return json.dumps({p.parent.name: comparable(json.loads(p.read_text()), base) for p in sorted(out.glob("*/metrics.json"))})


def training_state(run: Path) -> str:
    if not (run / "checkpoint.pt").exists():
        return "no epoch finished yet"
    import torch

    return f"training state after epoch {torch.load(run / 'checkpoint.pt', weights_only=True)['epoch']} (checkpoint.pt)"


# -- the run ---------------------------------------------------------------------------------------------
def setup(work: Path) -> tuple[Path, Path, Path]:
    root, cache, heads = work / "ds", work / "cache", work / "heads-cache"
    for args in (["data", "synth", root, "--classes", "2", "--stills-per-class", "8,4,4", "--videos-per-class", "2,1",
                  "--frames", "40", "--still-size", "48x48", "--video-size", "32x40"],
                 ["prepare", root, "--cache", cache, *PREPARE],
                 ["extract", root, "--modality", "still", "--cache", cache, *EXTRACT]):
        done = featcache(*args)
        if done.returncode:
            raise SystemExit(f"setup failed: featcache {' '.join(map(str, args))}\n{done.stderr[-2000:]}")
    write_synthetic_caches(heads, num_classes=4, dim=32, seed=0)
    return root, cache, heads


def print_table() -> None:
    widths = [max(len(str(r[i])) for r in ROWS + [("fault", "command", "outcome", "kept", "")]) for i in range(4)]
    widths[2] = min(widths[2], 110)
    head = ("fault", "command", "outcome", "what was kept", "pass")
    print("\n| " + " | ".join(h.ljust(w) for h, w in zip(head, widths + [4])) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths + [4]) + "|")
    for fault, command, outcome, kept, ok in ROWS:
        cells = (fault, command, outcome.replace("|", "/"), kept, "pass" if ok else "FAIL")
        print("| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths + [4])) + " |")
    print(f"\n{sum(r[4] for r in ROWS)}/{len(ROWS)} faults pass")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill points")
    parser.add_argument("--keep", type=Path, default=None, help="work here and keep it (default: a temporary folder)")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    work = args.keep or Path(tempfile.mkdtemp(prefix="featcache-faults-"))
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    try:
        root, cache, heads = setup(work)
        full_disk(work, "prepare", lambda d: ["prepare", root, "--cache", d / "cache", *PREPARE], Path("cache"),
                  Path("cache/temporal.h5.parts"), lambda fs, ref: (fs / "cache/temporal.h5").exists())
        full_disk(work, "extract", lambda d: ["extract", root, "--modality", "still", "--cache", d / "cache", *EXTRACT],
                  Path("cache"), Path("cache/still-efficientnet-lite0.h5.parts"),
                  lambda fs, ref: (fs / "cache/still-efficientnet-lite0.h5").exists())
        full_disk(work, "train-head", lambda d: head_args(heads)(d / "run"), Path("run"), Path("run"),
                  lambda fs, ref: one_metrics(fs / "run", fs / "run") == one_metrics(ref / "run", ref / "run"))
        read_only(work, "extract", lambda fs: ["extract", root, "--modality", "still", "--cache", fs / "cache", *EXTRACT],
                  "lock file")
        flipped_feature_cache(work, heads)
        flipped_temporal(work, root, cache)
        killed(head_args(heads), work, "train-head", rng, ("history.jsonl", "metrics.json"), lambda run: "unfinished run folder "
               "(no metrics.json), trained again" if not (run / "metrics.json").exists() else "finished run", one_metrics)
        killed(grid_args(heads), work, "grid", rng, (".featcache.lock", "grid.csv"),
               lambda out: f"{len(list(out.glob('*/metrics.json')))} of 3 configurations finished, reused", grid_metrics)
        killed(finetune_args(root, cache), work, "finetune", rng, ("history.jsonl", "metrics.json"), training_state,
               one_metrics)
        runs = work / "runs-for-report"
        for name in ("train-head-uninterrupted", "grid-uninterrupted"):
            shutil.copytree(work / name, runs / name)
        read_only(work, "report", lambda fs: ["report", runs, "--out", fs / "report", "--no-plots"], "report")
        damaged_runs(work, runs)
    finally:
        print_table()
        print(f"({time.perf_counter() - started:.0f} s; work folder {work}{'' if args.keep else ', removed'})")
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
