"""One FAISS build: faiss-gpu on Linux x86_64, faiss-cpu elsewhere; the miner's device choice."""

from __future__ import annotations

import importlib.metadata as metadata
import tomllib

import pytest
import torch
from packaging.requirements import Requirement

from featcache.errors import FeatcacheError
from heads.miners import faiss_semi_hard_miner as fm
from tests.conftest import REPO_ROOT

FAISS_DISTRIBUTIONS = ("faiss-cpu", "faiss-gpu", "faiss-gpu-cu12", "faiss-gpu-cu11", "faiss")


def faiss_requirements(environment: dict) -> list[str]:
    deps = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    reqs = [Requirement(d) for d in deps]
    return [r.name for r in reqs if r.name.startswith("faiss") and (r.marker is None or r.marker.evaluate(environment))]


@pytest.mark.parametrize("platform, machine, expected", [
    ("linux", "x86_64", ["faiss-gpu"]), ("linux", "aarch64", ["faiss-cpu"]),
    ("darwin", "arm64", ["faiss-cpu"]), ("win32", "AMD64", ["faiss-cpu"]),
])
def test_dependencies_name_exactly_one_faiss_per_platform(platform, machine, expected):
    assert faiss_requirements({"sys_platform": platform, "platform_machine": machine}) == expected
    extras = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert not any(Requirement(d).name.startswith("faiss") for deps in extras.values() for d in deps)


def test_this_environment_has_one_faiss_build():
    installed = []
    for name in FAISS_DISTRIBUTIONS:
        try:
            metadata.distribution(name)
            installed.append(name)
        except metadata.PackageNotFoundError:
            pass
    assert len(installed) == 1, f"several FAISS builds provide the faiss module: {installed}"


def test_miner_device_selection(monkeypatch):
    cpu, cuda1 = torch.device("cpu"), torch.device("cuda", 1)
    monkeypatch.setattr(fm, "faiss_gpu_count", lambda: 0)  # faiss-cpu, or faiss-gpu without a GPU
    assert fm.miner_device("auto", cpu) == cpu and fm.miner_device("auto", cuda1) == cpu
    assert fm.miner_device(False, cuda1) == cpu
    with pytest.raises(FeatcacheError, match="no GPU support"):
        fm.miner_device(True, cpu)
    monkeypatch.setattr(fm, "faiss_gpu_count", lambda: 2)  # FAISS sees GPUs
    assert fm.miner_device("auto", cpu) == cpu  # tensors on the CPU: the index stays there
    assert fm.miner_device("auto", cuda1) == cuda1 and fm.miner_device("auto", cuda1, gpu_device=0) == torch.device("cuda", 0)
    assert fm.miner_device(True, cpu) == torch.device("cuda", 0) and fm.miner_device(False, cuda1) == cpu
    with pytest.raises(ValueError, match="use_gpu"):
        fm.miner_device("yes", cpu)


def test_miner_stays_on_cpu_with_the_installed_faiss():
    import faiss

    temporal, labels = torch.randn(50, 6), torch.arange(50) % 5
    miner = fm.FaissSemiHardMiner(temporal, labels)
    if not torch.cuda.is_available():
        assert faiss.get_num_gpus() == 0 or not hasattr(faiss, "StandardGpuResources")
        assert fm.faiss_gpu_count() == 0
    assert not miner.on_gpu and miner.device.type == "cpu" and isinstance(miner.index, faiss.IndexFlatL2)
