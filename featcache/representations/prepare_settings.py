"""What ``featcache prepare`` computes (:class:`PrepareSettings`) and what it reports."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from featcache.cache.schema import FLOW_BOUND, FLOW_STACK, TEMPORAL_KINDS
from featcache.errors import FeatcacheError
from featcache.representations import dynamic_image, optical_flow
from featcache.representations.tvl1_torch import TVL1Params
from featcache.utils import distributed
from featcache.utils.device import resolve_device

DEFAULT_SIZE = (256, 340)  # UCF-101 flow convention: frames resized to H=256, W=340


@dataclass(frozen=True)
class PrepareSettings:
    """Everything that changes the stored representations; recorded in the file."""

    size: tuple[int, int] = DEFAULT_SIZE
    kinds: tuple[str, ...] = TEMPORAL_KINDS
    window: int = dynamic_image.WINDOW
    stride: int = dynamic_image.STRIDE
    count: int = dynamic_image.COUNT
    flow_method: str = "tvl1"
    flow_frames: int = optical_flow.NUM_FLOWS
    stack: int = FLOW_STACK
    bound: float = FLOW_BOUND
    # Where tvl1-torch runs and how many pairs per solver call: not recorded, as the flow does
    # not depend on the batch, and CPU and CUDA agree up to float rounding.
    flow_device: str = "auto"
    flow_batch: int = 0  # 0: chosen from frame size and free memory
    # Grey, TV-L1, quantisation and dynamic images as torch ops on the flow device (tvl1-torch only):
    # None -> on CUDA only (faster there, slower on the CPU); True -> also on the CPU (to compare
    # the two paths). Not recorded: both give the same flow, dynamic images within 1 grey level.
    preprocess_on_device: bool | None = None
    # Without ROOT/videos/val: the share of each class's train videos carved out as val videos, and
    # the seed of that draw. Recorded in the root attribute ``video_split`` (and in the rows'
    # split codes), not in ``preprocessing``: a new split reuses every computed video.
    val_videos: float = 0.2
    val_seed: int = 0

    def __post_init__(self):
        if len(self.size) != 2 or min(self.size) < 8:
            raise FeatcacheError(f"bad frame size {self.size}; expected HxW with both at least 8, e.g. 256x340")
        unknown = [k for k in self.kinds if k not in TEMPORAL_KINDS]
        if unknown or not self.kinds:
            raise FeatcacheError(f"unknown kind(s) {unknown or '(none)'}; expected {', '.join(TEMPORAL_KINDS)}")
        if self.window < 2 or self.stride < 1 or self.count < 1 or self.flow_frames < 1 or self.stack < 1:
            raise FeatcacheError(
                f"bad settings window={self.window} stride={self.stride} count={self.count} "
                f"flow frames={self.flow_frames}; need window >= 2 and the others >= 1"
            )
        if not 0.0 <= self.val_videos < 1.0:
            raise FeatcacheError(f"bad --val-videos {self.val_videos}; expected a share in [0, 1), e.g. 0.2")
        if self.flow_batch < 0:
            raise FeatcacheError(f"bad --flow-batch {self.flow_batch}; expected 0 (automatic) or a positive count")
        if self.flow_method not in optical_flow.FLOW_METHODS:
            raise FeatcacheError(
                f"unknown flow method {self.flow_method!r}; expected {', '.join(optical_flow.FLOW_METHODS)}"
            )

    def group_preprocessing(self, kind: str) -> dict[str, Any]:
        if kind == "dynamic":
            return {"window": self.window, "stride": self.stride, "count": self.count}
        flow = {"method": self.flow_method, "frames": self.flow_frames, "stack": self.stack, "bound": self.bound}
        if self.flow_method.startswith("tvl1-"):
            flow["tvl1"] = TVL1Params().as_dict()
        return flow

    def preprocessing(self) -> dict[str, Any]:
        """The root ``preprocessing`` JSON (DESIGN item 4)."""
        out: dict[str, Any] = {"size": list(self.size), "kinds": list(self.kinds)}
        for kind in self.kinds:
            out[kind] = self.group_preprocessing(kind)
        return out

    @classmethod
    def from_preprocessing(cls, pre: dict[str, Any]) -> "PrepareSettings":
        """The settings a ``temporal.h5``'s root ``preprocessing`` records (the inverse of :meth:`preprocessing`)."""
        kinds = tuple(pre.get("kinds") or [k for k in TEMPORAL_KINDS if k in pre])
        values: dict[str, Any] = {"size": tuple(pre["size"]), "kinds": kinds}
        values.update({k: v for k, v in (pre.get("dynamic") or {}).items() if k in ("window", "stride", "count")})
        flow = pre.get("flow") or {}
        names = {"method": "flow_method", "frames": "flow_frames", "stack": "stack", "bound": "bound"}
        values.update({names[k]: v for k, v in flow.items() if k in names})
        return cls(**values)

    def frames_to_read(self) -> int:
        """Middle frames both representations need (61 for 60 flows, 40 for 6 windows)."""
        needed = 0
        if "dynamic" in self.kinds:
            needed = dynamic_image.frames_needed(self.window, self.stride, self.count)
        if "flow" in self.kinds:
            needed = max(needed, self.flow_frames + 1)
        return needed


@dataclass
class PrepareReport:
    path: Path
    videos: int = 0
    computed: int = 0
    reused: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    notes: list[tuple[str, str]] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    up_to_date: bool = False
    unsupported: list[tuple[str, str]] = field(default_factory=list)  # files of other types in the tree, skipped
    assembled: bool = True  # False on the ranks > 0 of a torchrun job
    video_split: dict | None = None  # where the val videos came from (temporal.h5's ``video_split``)

    @property
    def prepared(self) -> int:
        return self.videos - len(self.failed)


def describe(pre: dict | None) -> str:
    if not pre:
        return "unknown settings"
    bits = [f"size={'x'.join(str(v) for v in pre.get('size', []))}", f"kinds={','.join(pre.get('kinds', []))}"]
    if "flow" in pre:
        bits.append(f"flow={pre['flow'].get('method')}")
    if "dynamic" in pre:
        d = pre["dynamic"]
        bits.append(f"window={d.get('window')} stride={d.get('stride')} count={d.get('count')}")
    return " ".join(bits)


def resolve_flow_settings(settings: PrepareSettings, env: distributed.DistEnv) -> PrepareSettings:
    """The flow device resolved (auto -> cuda or cpu; a bare cuda is this rank's GPU under torchrun)
    and ``tvl1`` named by its implementation."""
    if "flow" not in settings.kinds:
        return settings

    device = str(distributed.rank_device(resolve_device(settings.flow_device), env))
    return dataclasses.replace(settings, flow_device=device, flow_method=optical_flow.resolve_flow_method(settings.flow_method, device))
