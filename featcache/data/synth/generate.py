"""The dataset writer: renders every sample of a :class:`SynthConfig` into folder layout.

Layout (CONTRACT.md)::

    ROOT/stills/{train,val,test}/<class>/<class>_<split>_<index>.jpg
    ROOT/videos/{train,val,test}/<class>/<class>_<split>_<index>.avi     # MJPG, readable by OpenCV and PyAV
    ROOT/stills/unlabelled/still_<hash>.jpg   # --unlabelled-stills K: K stills of each train video's own figure
    ROOT/still-videos.csv                     # ... each linked to its video (featcache.data.still_videos)
    ROOT/classes.txt    ROOT/README.txt (the classes explained)    ROOT/synth.json (settings, complete flag)

Every sample has its own RNG seeded from (seed, kind, split, class, index), so files are
byte-identical for a seed whatever the order or the number of workers, and a class keeps
its files when ``--classes`` grows. Each file is written under ``ROOT/.synth-tmp`` and
renamed into place when finished, so a file under its final name is always complete:
an interrupted run resumes by rendering only the missing files (same settings required).
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from featcache.data.dataset import CLASSES_FILE
from featcache.data.still_videos import STILL_VIDEOS_FILE, write_still_videos
from featcache.errors import DatasetError, MediaError
from featcache.cache.schema import SPLIT_CODE, SPLITS, VIDEO_SPLITS
from featcache.data.synth.actions import ACTIONS_BY_NAME, DEFAULT_CLASSES, MAX_CLASSES, Action, pair_of, select_actions
from featcache.data.synth.samples import VIDEO_FRAMES, render_still, render_video
from featcache.utils.progress import make_progress

GENERATOR_VERSION = 3  # bump when the rendering changes: old datasets then no longer resume
MANIFEST = "synth.json"
README = "README.txt"
TMP_DIR = ".synth-tmp"
KIND_CODE = {"stills": 0, "videos": 1, "unlabelled": 2}
JPEG_QUALITY = 92
VIDEO_QUALITY = 85
MIN_FRAMES = 40  # dynamic images need 40 frames; the flow stacks need 61 (see featcache.representations)


@dataclass(frozen=True)
class SynthConfig:
    """Everything that determines the dataset's bytes."""

    classes: int = DEFAULT_CLASSES
    seed: int = 0
    stills: dict = field(default_factory=lambda: {"train": 24, "val": 8, "test": 12})  # per class
    videos: dict = field(default_factory=lambda: {"train": 10, "val": 3, "test": 4})  # per class
    frames: int = VIDEO_FRAMES
    still_size: tuple = (224, 224)  # (H, W)
    video_size: tuple = (96, 128)  # (H, W)
    fps: float = 25.0
    still_motion_cue: float = 0.0  # probability that a still's motion blur shows the direction
    still_exposure: float = 1.0  # a still's exposure, x the default 2-5 video frames: the cue's strength
    shuffle_videos: bool = False  # negative control: each video shows a random class's action
    unlabelled_stills: int = 0  # stills per train video, of its own figure, under stills/unlabelled/

    def __post_init__(self):
        if not 2 <= self.classes <= MAX_CLASSES:
            raise DatasetError(f"--classes must be between 2 and {MAX_CLASSES}, got {self.classes}")
        if self.seed < 0:
            raise DatasetError(f"--seed must be >= 0, got {self.seed}")
        if self.frames < MIN_FRAMES:
            raise DatasetError(f"--frames must be at least {MIN_FRAMES} (dynamic images need 40), got {self.frames}")
        for kind, splits in (("stills", self.stills), ("videos", self.videos)):
            if set(splits) - set(SPLITS if kind == "stills" else VIDEO_SPLITS) or any(n < 0 for n in splits.values()):
                raise DatasetError(f"bad {kind} counts per class: {splits}")
        if self.unlabelled_stills < 0:
            raise DatasetError(f"--unlabelled-stills must be >= 0, got {self.unlabelled_stills}")
        if not 0.0 <= self.still_motion_cue <= 1.0:
            raise DatasetError(f"--still-motion-cue must be between 0 and 1, got {self.still_motion_cue}")
        if not 0.25 <= self.still_exposure <= 8.0:
            raise DatasetError(f"--still-exposure must be between 0.25 and 8, got {self.still_exposure}")
        if min(self.still_size) < 32 or min(self.video_size) < 32:
            raise DatasetError(f"image sizes must be at least 32 pixels, got stills {self.still_size}, videos {self.video_size}")

    def as_dict(self) -> dict:
        d = asdict(self)
        d["still_size"], d["video_size"] = list(self.still_size), list(self.video_size)
        return d

    @property
    def actions(self) -> tuple[Action, ...]:
        return select_actions(self.classes)

    def ideal_accuracies(self) -> dict[str, float]:
        """Best possible accuracies by construction (assuming the pose identifies the pair).

        A still tells a paired class from its partner only when its blur carries the cue
        (probability ``still_motion_cue``), otherwise at chance 1/2; a video always shows
        the direction, unless ``shuffle_videos`` made its content unrelated to its label.
        """
        names = {a.name for a in self.actions}
        per_class = [0.5 + 0.5 * self.still_motion_cue if pair_of(a).name in names else 1.0 for a in self.actions]
        still = float(np.mean(per_class))
        video = 1.0 / self.classes if self.shuffle_videos else 1.0
        return {"still_only": round(still, 4), "video_only": round(video, 4),
                "still_and_video": round(still if self.shuffle_videos else 1.0, 4)}


@dataclass(frozen=True)
class Job:
    kind: str  # stills | videos | unlabelled (a still of the figure of video (split, action, index))
    split: str
    action: str
    index: int
    copy: int = 0  # unlabelled: which of the video's stills

    @property
    def path(self) -> str:
        if self.kind == "unlabelled":  # the name must not tell the class
            digest = hashlib.sha256(f"{self.split}:{self.action}:{self.index}:{self.copy}".encode()).hexdigest()[:12]
            return f"stills/unlabelled/still_{digest}.jpg"
        ext = ".jpg" if self.kind == "stills" else ".avi"
        return f"{self.kind}/{self.split}/{self.action}/{self.action}_{self.split}_{self.index:04d}{ext}"

    @property
    def video(self) -> "Job":
        """The video an unlabelled still shows the figure of."""
        return Job("videos", self.split, self.action, self.index)


def plan(config: SynthConfig) -> list[Job]:
    """Every file of the dataset, videos first (they take longest, so workers stay busy)."""
    jobs = []
    for kind, counts in (("videos", config.videos), ("stills", config.stills)):
        for split, count in counts.items():
            for action in config.actions:
                jobs.extend(Job(kind, split, action.name, i) for i in range(count))
    for action in config.actions:
        jobs.extend(Job("unlabelled", "train", action.name, i, k)
                    for i in range(config.videos.get("train", 0)) for k in range(config.unlabelled_stills))
    return jobs


def sample_rng(config: SynthConfig, job: Job) -> np.random.Generator:
    """The sample's own RNG, from (seed, kind, split, class id, index[, copy]): order-free and stable."""
    action = ACTIONS_BY_NAME[job.action]
    copy = [job.copy] if job.kind == "unlabelled" else []
    return np.random.default_rng([config.seed, KIND_CODE[job.kind], SPLIT_CODE[job.split], action.id, job.index, *copy])


def video_action(config: SynthConfig, job: Job) -> tuple[Action, np.random.Generator]:
    """The action video ``job`` shows and its RNG, ready to draw the video's figure."""
    action, rng = ACTIONS_BY_NAME[job.action], sample_rng(config, job)
    if config.shuffle_videos:  # drawn from the sample's own RNG: still order-free and stable
        action = config.actions[int(rng.integers(config.classes))]
    return action, rng


# -- writing one file -----------------------------------------------------------
def _tmp_path(root: Path, job: Job) -> Path:
    return root / TMP_DIR / f"{Path(job.path).stem}.{os.getpid()}{Path(job.path).suffix}"


def write_still(path: Path, tmp: Path, image: np.ndarray) -> None:
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise MediaError(f"{path}: JPEG encoding failed")
    tmp.write_bytes(data.tobytes())
    os.replace(tmp, path)


def write_video(path: Path, tmp: Path, frames: np.ndarray, fps: float) -> None:
    """MJPG in AVI with OpenCV's built-in writer (no FFmpeg needed), checked by decoding it back."""
    height, width = frames.shape[1:3]
    writer = cv2.VideoWriter(str(tmp), cv2.CAP_OPENCV_MJPEG, cv2.VideoWriter_fourcc(*"MJPG"), fps, (width, height))
    if not writer.isOpened():
        raise MediaError(f"{path}: OpenCV cannot open an MJPG video writer")
    writer.set(cv2.VIDEOWRITER_PROP_QUALITY, VIDEO_QUALITY)
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    decoded = _count_frames(tmp)
    if decoded != (len(frames), height, width):
        tmp.unlink(missing_ok=True)
        raise MediaError(f"{path}: written video decodes as {decoded} (frames, H, W), expected {(len(frames), height, width)}")
    os.replace(tmp, path)


def _count_frames(path: Path) -> tuple[int, int, int]:
    capture = cv2.VideoCapture(str(path))
    count, shape = 0, (0, 0)
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        count, shape = count + 1, frame.shape[:2]
    capture.release()
    return count, *shape


def render_job(config: SynthConfig, job: Job) -> np.ndarray:
    if job.kind == "stills":
        action, rng = ACTIONS_BY_NAME[job.action], sample_rng(config, job)
        return render_still(action, rng, tuple(config.still_size), motion_cue=config.still_motion_cue,
                            exposure_scale=config.still_exposure)
    if job.kind == "unlabelled":  # the video's action and figure, the still's own moment and setting
        action, figure_rng = video_action(config, job.video)
        return render_still(action, sample_rng(config, job), tuple(config.still_size),
                            motion_cue=config.still_motion_cue, figure_rng=figure_rng,
                            exposure_scale=config.still_exposure)
    action, rng = video_action(config, job)
    return render_video(action, rng, config.frames, tuple(config.video_size))


def run_job(root: Path, config: SynthConfig, job: Job) -> str:
    """Render and write one file (skipped if already there: files only appear complete)."""
    path = root / job.path
    if path.exists():
        return "skipped"
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = render_job(config, job)
    tmp = _tmp_path(root, job)
    if job.kind != "videos":
        write_still(path, tmp, pixels)
    else:
        write_video(path, tmp, pixels, config.fps)
    return "written"


def _worker_init() -> None:
    cv2.setNumThreads(1)  # parallelism comes from the processes


def _worker(args) -> str:
    return run_job(*args)


# -- the dataset ----------------------------------------------------------------
def read_manifest(root: Path) -> dict | None:
    path = root / MANIFEST
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise DatasetError(f"{path}: unreadable synth manifest ({exc}); pass --restart to regenerate") from None


def write_text_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_manifest(root: Path, config: SynthConfig, complete: bool, counts: dict | None = None) -> None:
    manifest = {
        "generator": "featcache.synth", "version": GENERATOR_VERSION, "config": config.as_dict(),
        "classes": [a.name for a in config.actions], "counts": counts or {}, "complete": complete,
        "still_motion_cue": config.still_motion_cue, "ideal_accuracy": config.ideal_accuracies(),
    }
    write_text_atomic(root / MANIFEST, json.dumps(manifest, indent=2) + "\n")


def remove_outputs(root: Path) -> None:
    """Delete what this generator writes in ``root`` (and nothing else)."""
    for name in ("stills", "videos", TMP_DIR):
        if (root / name).is_dir():
            shutil.rmtree(root / name)
    for name in (CLASSES_FILE, README, MANIFEST, STILL_VIDEOS_FILE):
        (root / name).unlink(missing_ok=True)


def prepare_root(root: Path, config: SynthConfig, overwrite: bool) -> bool:
    """Make ``root`` ready; True when resuming a run with the same settings."""
    if root.exists() and not root.is_dir():
        raise DatasetError(f"{root}: exists and is not a folder")
    if overwrite:
        if root.exists():
            remove_outputs(root)
    elif root.exists() and any(root.iterdir()):
        manifest = read_manifest(root)
        if manifest is None:
            raise DatasetError(f"{root}: folder is not empty and holds no synthetic dataset; "
                               f"pass --restart to write into it, or choose another ROOT")
        old = {**SynthConfig().as_dict(), **manifest.get("config", {})}  # keys added since: their defaults
        if manifest.get("version") != GENERATOR_VERSION or old != config.as_dict():
            diff = ", ".join(f"{k} {old.get(k)!r} -> {v!r}" for k, v in config.as_dict().items() if old.get(k) != v)
            raise DatasetError(f"{root}: holds a synthetic dataset made with other settings "
                               f"({diff or 'generator version ' + str(manifest.get('version'))}); pass --restart to regenerate")
        return True
    root.mkdir(parents=True, exist_ok=True)
    return False


def describe_classes(actions) -> str:
    width = max(len(a.name) for a in actions)
    lines = []
    for a in actions:
        partner = pair_of(a)
        pair = f" [pair: {partner.name}]" if partner in actions else ""
        lines.append(f"{a.name:<{width}}  {a.description}{pair}")
    return "\n".join(lines)


def readme_text(config: SynthConfig) -> str:
    ideal = config.ideal_accuracies()
    shuffled = ("\nNEGATIVE CONTROL (--shuffle-videos): each video shows the action of a random class, so videos\n"
                "carry no information about their label.\n" if config.shuffle_videos else "")
    return f"""Synthetic T2SIL action dataset, written by `featcache data synth` (generator version {GENERATOR_VERSION}).

Articulated figures perform {config.classes} actions. Classes come in pairs with the same poses played in
opposite time directions, so a still shows the pose and only the motion tells the pair apart:
videos show it plainly; a still shows it only when its motion blur carries the cue.

Still motion cue: {config.still_motion_cue:g} (--still-motion-cue, 0..1) = the probability that a still's blur is a
  fading trail behind the figure (the direction is readable); otherwise the blur is a symmetric smear
  that is identical for a motion and its reverse (the direction is not in the still at all).
Still exposure: {config.still_exposure:g} (--still-exposure) x two to five video frames: the length of that trail or
  smear (the cue's strength: longer is easier to see; it does not change the ideal accuracies).
Ideal accuracies by construction (a perfect observer; the pose identifies the pair):
  still only {100 * ideal['still_only']:.1f}%   video only {100 * ideal['video_only']:.1f}%   \
still + video {100 * ideal['still_and_video']:.1f}%
  (a paired class: 50% + 50% x cue from a still; chance is {100 / config.classes:.1f}%).
{shuffled}
Classes (in label order, as in classes.txt):
{describe_classes(config.actions)}

Stills: {config.still_size[1]}x{config.still_size[0]} JPEG, subject large and centred, varied backgrounds,
        motion blur along each limb's motion; per class {config.stills}.
Videos: {config.video_size[1]}x{config.video_size[0]} MJPG AVI, {config.frames} frames at {config.fps:g} fps, subject small
        and off-centre, camera shake, sensor noise, plain backgrounds; per class {config.videos}.
Unlabelled stills: {config.unlabelled_stills} per train video (stills/unlabelled/, each of its video's own figure at
        another moment, the same cue; still-videos.csv links it to the video; labels unknown to the methods).
Seed {config.seed}: the same settings always give byte-identical files (see synth.json).
"""


def generate(root: str | os.PathLike, config: SynthConfig, *, overwrite: bool = False, workers: int = 1,
             show_progress: bool = True) -> dict:
    """Write the dataset; returns {"written", "skipped", "resumed", "seconds", "counts"}."""
    root = Path(root).expanduser()
    started = time.perf_counter()
    resumed = prepare_root(root, config, overwrite)
    shutil.rmtree(root / TMP_DIR, ignore_errors=True)  # leftovers of a crashed run
    (root / TMP_DIR).mkdir()
    write_manifest(root, config, complete=False)
    write_text_atomic(root / CLASSES_FILE, "".join(f"{a.name}\n" for a in config.actions))
    write_text_atomic(root / README, readme_text(config))

    jobs = plan(config)
    args = [(root, config, job) for job in jobs]
    tally = {"written": 0, "skipped": 0}
    pool = _make_pool(workers) if workers > 1 and len(jobs) > 1 else None
    try:
        results = pool.imap_unordered(_worker, args, chunksize=2) if pool else map(_worker, args)
        progress = make_progress("files/s")
        with progress:
            task = progress.add_task("synth dataset", total=len(jobs), rate=0.0, visible=show_progress)
            for result in results:
                tally[result] += 1
                _advance(progress, task, started)
    finally:
        if pool:
            pool.terminate()
            pool.join()
    shutil.rmtree(root / TMP_DIR, ignore_errors=True)
    counts = {
        kind: {split: n * config.classes for split, n in splits.items()}
        for kind, splits in (("stills", config.stills), ("videos", config.videos))
    }
    if config.unlabelled_stills:
        unlabelled = [job for job in jobs if job.kind == "unlabelled"]
        write_still_videos(root, {job.path: job.video.path for job in unlabelled})
        counts["stills"]["unlabelled"] = len(unlabelled)
    write_manifest(root, config, complete=True, counts=counts)  # last: the dataset is finished
    return {**tally, "resumed": resumed, "seconds": time.perf_counter() - started, "counts": counts}


def _make_pool(workers: int):
    # Not "fork": a child forked after OpenCV has started its thread pool can deadlock.
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
    return context.Pool(workers, initializer=_worker_init)


def _advance(progress, task, started: float) -> None:
    progress.advance(task)
    done = progress.tasks[task].completed
    progress.update(task, rate=done / max(time.perf_counter() - started, 1e-9))
