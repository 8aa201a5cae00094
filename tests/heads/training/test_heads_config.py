"""Defaults from the paper's tables and --set parsing."""

import pytest

from featcache.errors import FeatcacheError
from heads.training.methods import default_config, shape_key
from heads.training.methods import head_config


def parse_sets(method, temporal, assignments):
    return head_config(method, temporal, sets=assignments)


def test_defaults_follow_tables_6_and_8():
    for temporal in ("flow", "dynamic"):
        gan = default_config("gan", temporal)
        assert (gan["d0"], gan["d1"], gan["d2"], gan["lambda"], gan["lr"]) == (256, 128, 256, 1.0, 1e-3)
        assert (gan["dropout"], gan["noise"]) == (0.5, 0.01)
    flow, dynamic = default_config("embed", "flow"), default_config("embed", "dynamic")
    assert (flow["d0"], flow["d1"], flow["alpha"], flow["lr"]) == (256, 256, 1.0, 2e-4)
    assert (dynamic["d0"], dynamic["d1"], dynamic["alpha"], dynamic["lr"]) == (128, 256, 0.5, 2e-4)
    # Table 8 samples 4 x 4; ours 8 x 8 (3 epochs of 106 batches: the derived accuracy of 4 x 4's 1,700
    # steps at a third of the time, benchmarks/heads.py); --set classes_per_batch=4 instances_per_class=4 is the paper's.
    assert (flow["classes_per_batch"], flow["instances_per_class"]) == (8, 8)
    assert default_config("classifier", "flow")["dimred_dropout"] == 0.5


def test_set_parses_typed_values():
    config = parse_sets("gan", "flow", ["lr=2e-4", "d0=64", "lambda=0.5", "select=derived", " seed = 3 "])
    assert config["lr"] == 2e-4 and config["d0"] == 64 and isinstance(config["d0"], int)
    assert config["lambda"] == 0.5 and config["select"] == "derived" and config["seed"] == 3


@pytest.mark.parametrize("assignment, message", [
    ("alpha=1", "unknown key for train-head gan; valid keys: batch_size, d0, d1, d2"),
    ("lr", "expected KEY=VALUE"),
    ("d0=1.5", "d0=1.5: expected an int"),
    ("lr=fast", "lr=fast: expected a finite float"),
    ("lr=nan", "expected a finite float"),
    ("lr=-1", "expected a number > 0"),
    ("dropout=1", "expected a rate in [0, 1)"),
    ("batch_size=1", "expected an integer >= 2"),
    ("epochs=0", "expected an integer >= 1"),
    ("still_model=best", "expected one of auto, logits, linear"),
])
def test_set_errors_name_the_key_and_the_reason(assignment, message):
    with pytest.raises(FeatcacheError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        parse_sets("gan", "flow", [assignment])


def test_unknown_method_and_modality():
    with pytest.raises(FeatcacheError, match="unknown head method"):
        default_config("tsn", "flow")
    with pytest.raises(FeatcacheError, match="unknown temporal modality"):
        default_config("gan", "rgb")


def test_shape_key_ignores_per_member_keys():
    a = default_config("gan", "flow")
    b = dict(a, lr=1e-4, seed=5, dropout=0.3, noise=0.0)
    assert shape_key("gan", a) == shape_key("gan", b)
    assert shape_key("gan", a) != shape_key("gan", dict(a, d0=128))
    assert shape_key("gan", a) != shape_key("gan", dict(a, epochs=3))


# -- schedules: the paper's epochs at its size, a floor that shrinks with the data -----------
def test_schedule_is_the_paper_epochs_at_its_size_and_a_data_scaled_floor_below():
    from heads.training.config import PAPER_STILLS, PAPER_TEMPORAL_ROWS, batches_per_epoch, data_min_steps, epoch_passes

    parts = {  # method: [(epochs key, min-steps key, batch size, rows at the paper's size)]
        "classifier": [("still_epochs", "still_min_steps", 256, PAPER_STILLS),
                       ("dimred_epochs", "dimred_min_steps", 256, PAPER_TEMPORAL_ROWS)],
        "gan": [("epochs", "min_steps", 128, PAPER_STILLS)],
        "embed": [("epochs", "min_steps", 16, PAPER_STILLS),
                  ("classifier_epochs", "classifier_min_steps", 256, PAPER_TEMPORAL_ROWS),
                  ("dimred_epochs", "dimred_min_steps", 256, PAPER_TEMPORAL_ROWS)],  # its own: 4 epochs
    }
    for method, rows in parts.items():
        config = default_config(method, "dynamic")
        for epochs_key, steps_key, batch, paper_rows in rows:
            epochs, min_steps = config[epochs_key], config[steps_key]
            if epochs_key == "epochs" and method == "embed":
                batch = config["classes_per_batch"] * config["instances_per_class"]
            assert epoch_passes(epochs, min_steps, paper_rows, batch, paper_rows) == 1, (method, epochs_key)
            assert min_steps == epochs * batches_per_epoch(paper_rows, batch), (method, epochs_key)
            previous = 0.0
            for tiny_rows in (6, 30, 192, 500):  # the real subset, the synthetic sets: a batch or two per epoch
                floor = data_min_steps(min_steps, tiny_rows, paper_rows)
                assert previous < floor < min_steps  # grows with the data, below the paper's steps
                previous = floor
                batches = batches_per_epoch(tiny_rows, batch)
                passes = epoch_passes(epochs, min_steps, tiny_rows, batch, paper_rows)
                assert epochs * passes * batches >= floor and epochs * (passes - 1) * batches < floor
    # 100x fewer rows: 10x fewer steps than the paper's, 10x more epochs' worth of passes.
    assert data_min_steps(1000, 68, 6800) == pytest.approx(100)


def test_min_steps_keys_are_range_checked():
    with pytest.raises(FeatcacheError, match="min_steps"):
        parse_sets("gan", "flow", ["min_steps=0"])
    assert parse_sets("embed", "flow", ["min_steps=1"])["min_steps"] == 1
