"""The head-method registry: a method defined and registered here, in the test, trains through
fit_head, fit_grid and the report with no other file touched; the built-in records rebuild their
derived stream from model.pt."""

from __future__ import annotations

import pytest
import torch

from featcache.errors import FeatcacheError
from heads.api import fit_grid, fit_head
from heads.experiments.report.render import write_report
from heads.experiments.report.runs import collect_runs, t2sil_methods
from heads.experiments.report.tables import table2
from heads.nn.member_random import MemberRandom
from heads.nn.stacked_linear import StackedLinear
from heads.optim.stacked_adam import StackedAdam
from heads.training.checkpoint import load_head_checkpoint
from heads.training.loop import predict
from heads.training.methods import default_config, defaults_table, get_method, head_config, list_methods, shape_key
from heads.training.predictor import DerivedPredictor, loaded, member_random
from heads.training.registry import HeadMethod, register_head_method, unregister_head_method
from heads.training.settings import positive_int
from heads.training.train_head import train_head
from tests.heads_fixtures import FAST, fast_config, head_data, synthetic_cache_dir  # noqa: F401


# -- a fourth method, in one place: a distillation MLP on the cache ----------------------
def fit_distill(data, configs, device, phases, still, dimred):
    """A linear map from still features to the class centroid of the compact temporal features,
    classified by the frozen dim-reduction classifier (full-batch Adam, ``distill_steps`` steps)."""
    members, seeds = len(configs), [c["seed"] for c in configs]
    train = data.still["train"]
    x, y = train.features.to(device), train.labels.to(device)
    centroids = torch.stack([
        torch.stack([dimred.compact_train[u][dimred.temporal_train_labels == c].mean(0) for c in range(data.num_classes)])
        for u in range(dimred.compact_train.shape[0])])  # [U, C, d1]
    target = centroids[dimred.owner][:, y]  # [G, N, d1]
    mapping = StackedLinear(members, data.still_cache.feature_dim, configs[0]["d1"],
                            MemberRandom.from_seeds(seeds, "distill-init", device)).to(device)
    optimizer = StackedAdam(mapping.parameters(), [c["lr"] for c in configs])
    steps = configs[0]["distill_steps"]
    advance = phases.start("distillation", steps)
    for step in range(steps):
        loss = ((mapping(x.expand(members, -1, -1)) - target) ** 2).mean(dim=(1, 2))
        optimizer.zero_grad()
        loss.sum().backward()
        optimizer.step()
        phases.record("distill", step, {"loss": loss.detach().cpu()})
        advance()
    mapping.eval()
    derived = {split: predict(lambda rows: dimred.model.classifier(mapping(rows)), data.still[split].features.to(device),
                              members).softmax(-1) if split in data.still else None for split in ("val", "test")}
    return derived, {"mapping": mapping}, [steps - 1] * members


def load_distill_predictor(checkpoint):
    config, dims, state = checkpoint["config"], checkpoint["dims"], checkpoint["state"]
    rng = member_random(checkpoint)
    mapping = loaded(StackedLinear(1, dims["still"], config["d1"], rng), state["mapping"])
    classifier = loaded(StackedLinear(1, config["d1"], dims["classes"], rng),
                        {k.removeprefix("classifier."): v for k, v in state["dimred"].items() if k.startswith("classifier.")})
    return DerivedPredictor(mapping, classifier)


@pytest.fixture
def distill():
    method = register_head_method(HeadMethod(
        name="distill", fit=fit_distill, help="distillation MLP (test)", label="Distill MLP",
        defaults={"lr": 0.01, "distill_steps": 40}, keys=(positive_int("distill_steps", shape=True),),
        load_predictor=load_distill_predictor,
    ))
    yield method
    unregister_head_method("distill")
    assert "distill" not in list_methods()


def test_a_method_registered_in_one_place_is_everywhere(distill):
    assert "distill" in list_methods() and ("distill", "Distill MLP") in t2sil_methods()
    config = default_config("distill", "flow")
    assert config["distill_steps"] == 40 and config["still_epochs"] == default_config("classifier", "flow")["still_epochs"]
    assert head_config("distill", "dynamic", sets=["distill_steps=5"])["distill_steps"] == 5
    with pytest.raises(FeatcacheError, match="distill_steps=0: expected an integer >= 1"):
        head_config("distill", "flow", sets=["distill_steps=0"])
    with pytest.raises(FeatcacheError, match="unknown key for train-head distill"):
        head_config("distill", "flow", sets=["alpha=1"])
    assert shape_key("distill", config) != shape_key("distill", dict(config, distill_steps=3))
    assert shape_key("distill", config) == shape_key("distill", dict(config, lr=0.1))
    header = defaults_table().splitlines()[0].split()
    assert "distill" in header and header[0] == "key"


def test_a_method_registered_in_the_test_trains_through_fit_head_fit_grid_and_the_report(distill, synthetic_cache_dir,
                                                                                           tmp_path):
    fast = {k: v for k, v in FAST.items() if k in default_config("distill", "flow")}
    runs = tmp_path / "runs"
    run = fit_head(synthetic_cache_dir, "distill", "flow", config=fast, out=runs / "distill-flow", device="cpu")
    assert run.metrics["method"] == "distill" and run.metrics["derived"]["test"] > 3 * 100 / 6
    assert set(run.checkpoint["state"]) == {"still", "dimred", "mapping"}
    grid = fit_grid(synthetic_cache_dir, "distill", "flow", grid={"lr": [0.01, 0.05]}, config_file=None,
                    sets=[f"{k}={v}" for k, v in fast.items()], out=runs / "grid-distill", device="cpu")
    assert sorted(r.config["lr"] for r in grid.runs) == [0.01, 0.05] and grid.csv.is_file()
    report = collect_runs([runs])
    rows = {row[1]: row for row in table2(report) if len(row) > 1}
    assert "Distill MLP" in rows and any(cell not in ("", "—") for cell in rows["Distill MLP"][2:])
    _, _, path = write_report([runs], tmp_path / "report", plots=False)
    assert "Distill MLP" in path.read_text()
    # Its predictor rebuilds the derived stream from model.pt.
    predictor = get_method("distill").load_predictor(load_head_checkpoint(runs / "distill-flow" / "model.pt"))
    still_test = run_features(synthetic_cache_dir)
    assert torch.allclose(predictor(still_test).softmax(-1), run.predictions["derived"]["test"], atol=1e-5)


def run_features(cache):
    from heads.training.head_data import HeadData

    return HeadData.load(cache, "flow").still["test"].features


@pytest.mark.parametrize("method", [m for m in list_methods() if get_method(m).load_predictor is not None])
def test_load_predictor_reproduces_the_derived_test_predictions(head_data, method, tmp_path):
    from heads.training.checkpoint import save_head_checkpoint

    result = train_head(method, head_data, fast_config(method, epochs=2))
    checkpoint = load_head_checkpoint(save_head_checkpoint(tmp_path / "model.pt", result.checkpoint))
    predictor = get_method(method).load_predictor(checkpoint)
    probs = predictor(head_data.still["test"].features).softmax(-1)
    assert torch.allclose(probs, result.predictions["derived"]["test"], atol=1e-5)
    assert not predictor.training and not any(p.requires_grad for p in predictor.parameters())


def test_unknown_method_and_duplicate_registration():
    with pytest.raises(FeatcacheError, match="unknown head method 'tsn'; expected one of"):
        get_method("tsn")
    with pytest.raises(ValueError, match="already registered"):
        register_head_method(HeadMethod(name="gan", fit=fit_distill, help="again"))
