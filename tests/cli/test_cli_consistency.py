"""One consistent command line: --version, completion, --device, --restart, --config, help, one error format."""

import json
from importlib.metadata import version

import pytest
import torch
import typer
import yaml
from typer.testing import CliRunner

from cli.app import app, main
from cli.choices import check_device
from featcache.utils.device import resolve_device
from featcache.errors import FeatcacheError
from heads.training.methods import default_columns, default_config
from tests.heads_fixtures import synthetic_cache_dir  # noqa: F401
from tests.cli.test_heads_cli import FAST_SETS, sets

COMPUTING = {"extract": ["extract", "root", "--modality", "still"], "train-head": ["train-head", "gan"],
             "grid": ["grid", "gan"], "finetune": ["finetune", "still", "root"], "tsn": ["tsn", "root"],
             "keyframes": ["keyframes", "root"], "baseline": ["baseline", "still"], "oracle": ["oracle"],
             "demo": ["demo"], "predict": ["predict", "run", "photo.jpg"]}
RESUMABLE = ("prepare", "extract", "grid", "finetune", "tsn", "keyframes", "data synth", "demo")


def commands():
    """(path, click command) of every leaf command."""
    def walk(command, path):
        for name, sub in getattr(command, "commands", {}).items():
            yield from walk(sub, [*path, name]) if getattr(sub, "commands", None) else [(" ".join([*path, name]), sub)]
    return dict(walk(typer.main.get_command(app), []))


def run_main(capsys, args):
    """``featcache ARGS`` in-process: (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as exit_info:
        main(args)
        raise SystemExit(0)
    out = capsys.readouterr()
    return exit_info.value.code, out.out, out.err


def test_version_is_the_installed_package_version(capsys):
    code, out, err = run_main(capsys, ["--version"])
    assert code == 0 and out.strip() == f"featcache {version('featcache')}" and not err


def test_shell_completion_is_on():
    result = CliRunner().invoke(app, ["--help"])
    assert "--install-completion" in result.output and "--show-completion" in result.output
    script = CliRunner().invoke(app, ["--show-completion", "bash"], prog_name="featcache")
    assert script.exit_code == 0 and "_FEATCACHE_COMPLETE" in script.output


def test_every_option_and_argument_has_help():
    missing = [f"{path} {p.name}" for path, command in commands().items() for p in command.params
               if not getattr(p, "hidden", False) and not (getattr(p, "help", None) or "").strip()]
    assert missing == []


def test_every_computing_command_has_the_same_device_option():
    found = commands()
    for name in COMPUTING:
        device = next(p for p in found[name].params if p.name == "device")
        assert device.default == "auto" and device.opts == ["--device"], name
        assert device.callback is not None and "cuda:N" in device.help, name


@pytest.mark.parametrize("name", sorted(COMPUTING))
def test_invalid_device_is_one_line_error_on_every_command(name, capsys):
    code, out, err = run_main(capsys, [*COMPUTING[name], "--device", "gpu0"])
    assert code == 1 and err == "featcache: error: --device gpu0: expected auto, cpu, cuda or cuda:N\n"


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_unavailable_cuda_is_one_line_error(capsys):
    code, _, err = run_main(capsys, ["train-head", "gan", "--device", "cuda:1"])
    assert code == 1 and err.startswith("featcache: error: --device cuda:1: CUDA is not available")
    assert len(err.splitlines()) == 1


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu") and check_device("cpu") == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    for bad in ("cpu:0", "cuda:", "cuda:-1", "tpu", ""):
        with pytest.raises(FeatcacheError, match="expected auto, cpu, cuda or cuda:N"):
            resolve_device(bad)


def test_every_resumable_command_has_restart():
    found = commands()
    for name in RESUMABLE:
        option = next((p for p in found[name].params if p.name == "restart"), None)
        assert option is not None and option.opts == ["--restart"] and not option.hidden, name


def test_usage_errors_and_user_errors_have_one_format(capsys):
    for args in (["train-head", "ganx"], ["train-head", "gan", "--nope"], ["grid", "gan", "--max-group", "x"]):
        code, _, err = run_main(capsys, args)
        assert code == 2 and err.startswith("featcache: error: ") and len(err.splitlines()) == 1, err
        assert "featcache: error:" not in err[len("featcache: error:"):]
    code, _, err = run_main(capsys, ["grid", "gan", "--cache", "nowhere"])
    assert code == 1 and err.startswith("featcache: error: grid: give at least one --set")


def test_train_head_help_lists_every_key_with_its_defaults():
    result = CliRunner().invoke(app, ["train-head", "gan", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    rows = {line.split()[0]: line.split()[1:] for line in result.output.splitlines() if line.split()}
    for index, (method, temporal) in enumerate(default_columns()):
        for key, value in default_config(method, temporal or "flow").items():
            assert rows[key][index] == str(value), (key, method, temporal)
    assert "--config" in result.output


def train(cache, out, *extra):
    result = CliRunner().invoke(app, ["train-head", "gan", "--cache", str(cache), "--temporal", "flow", "--out",
                                      str(out), "--device", "cpu", *extra])
    assert result.exit_code == 0, result.output
    return json.loads((out / "metrics.json").read_text())


def test_config_yaml_round_trip_reproduces_the_metrics(synthetic_cache_dir, tmp_path):
    first = train(synthetic_cache_dir, tmp_path / "a", *sets(*FAST_SETS, "seed=7", "lr=5e-4"))
    saved = yaml.safe_load((tmp_path / "a" / "config.yaml").read_text())
    assert saved == first["config"] and saved["seed"] == 7 and saved["lr"] == 5e-4
    again = train(synthetic_cache_dir, tmp_path / "b", "--config", str(tmp_path / "a" / "config.yaml"))
    assert again["config"] == first["config"]
    for stream in ("still", "derived", "fused"):
        assert again[stream] == first[stream], stream
    assert again["per_class"] == first["per_class"]
    wins = train(synthetic_cache_dir, tmp_path / "c", "--config", str(tmp_path / "a" / "config.yaml"), "--set", "lr=1e-3")
    assert wins["config"] == {**first["config"], "lr": 1e-3}  # the command line wins over the file


def test_bad_config_files_are_one_line_errors(synthetic_cache_dir, tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    for text, reason in (("lambda: [1, 2]\n", "lambda: expected a single value"), ("alpha: 1\n", "unknown key alpha"),
                         ("lr: -1\n", "lr: -1: expected a number > 0"), ("- 1\n", "expected a mapping")):
        bad.write_text(text)
        code, _, err = run_main(capsys, ["train-head", "gan", "--cache", str(synthetic_cache_dir), "--temporal",
                                         "flow", "--config", str(bad), "--out", str(tmp_path / "x")])
        assert code == 1 and err.startswith(f"featcache: error: {bad}") and reason in err, err
    assert not (tmp_path / "x").exists()


def test_grid_config_lists_vary_and_restart_retrains(synthetic_cache_dir, tmp_path):
    grid_file = tmp_path / "grid.yaml"
    grid_file.write_text(yaml.safe_dump({**dict(s.split("=") for s in FAST_SETS), "lr": [1e-3, 5e-4]}))
    args = ["grid", "gan", "--cache", str(synthetic_cache_dir), "--temporal", "flow", "--out", str(tmp_path / "g"),
            "--device", "cpu", "--config", str(grid_file)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "2 configurations (2 trained, 0 reused)" in result.output
    members = sorted(p.parent for p in (tmp_path / "g").rglob("config.yaml"))
    assert sorted(yaml.safe_load((m / "config.yaml").read_text())["lr"] for m in members) == [5e-4, 1e-3]
    assert "(0 trained, 2 reused)" in CliRunner().invoke(app, args).output
    assert "(2 trained, 0 reused)" in CliRunner().invoke(app, [*args, "--restart"]).output
    # a member's config.yaml trains it alone, with the same metrics
    member = members[0]
    alone = train(synthetic_cache_dir, tmp_path / "alone", "--config", str(member / "config.yaml"))
    grid_metrics = json.loads((member / "metrics.json").read_text())
    assert alone["fused"] == grid_metrics["fused"] and alone["config"] == grid_metrics["config"]


def test_extract_restart_recomputes_and_overwrite_stays_a_hidden_alias(tmp_path):
    from tests.featcache.extraction.test_extract import make_stills

    root = make_stills(tmp_path / "ds", per_class=1)
    args = ["extract", str(root), "--modality", "still", "--backbone", "efficientnet-lite0", "--weights", "random",
            "--cache", str(tmp_path / "cache"), "--resize", "28", "--crop", "24", "--workers", "0", "--device", "cpu"]
    assert "extracted 9/9" in CliRunner().invoke(app, args).output
    assert "up to date" in CliRunner().invoke(app, args).output
    assert "extracted 9/9" in CliRunner().invoke(app, [*args, "--restart"]).output
    other = [a if a != "24" else "20" for a in args]
    assert CliRunner().invoke(app, other).exit_code == 1
    assert "extracted 9/9" in CliRunner().invoke(app, [*other, "--overwrite"]).output
    assert "--overwrite" not in CliRunner().invoke(app, ["extract", "--help"]).output


def test_finetune_out_is_the_run_folder_and_restart_starts_over(tmp_path):
    from tests.heads.finetune.test_finetune import CROP, RESIZE, TINY, make_dataset

    root = make_dataset(tmp_path / "data")
    args = ["finetune", "still", str(root), "--backbone", TINY, "--weights", "random", "--cache", str(root / "cache"),
            "--out", str(tmp_path / "run"), "--model", str(tmp_path / "still.pt"), "--crop", str(CROP), "--resize",
            str(RESIZE), "--batch-size", "8", "--device", "cpu"]
    assert CliRunner().invoke(app, [*args, "--epochs", "1"]).exit_code == 0
    assert {"metrics.json", "checkpoint.pt", "history.jsonl", "config.yaml"} <= {p.name for p in (tmp_path / "run").iterdir()}
    assert (tmp_path / "still.pt").is_file()
    curve = lambda: (tmp_path / "run" / "history.jsonl").read_text()  # noqa: E731
    assert CliRunner().invoke(app, [*args, "--epochs", "2"]).exit_code == 0  # other settings: a fresh run
    first = curve()
    assert [json.loads(line)["epoch"] for line in first.splitlines()] == [1, 2]
    assert CliRunner().invoke(app, [*args, "--epochs", "2"]).exit_code == 0  # the same run, finished: resumed as is
    assert curve() == first
    assert CliRunner().invoke(app, [*args, "--epochs", "2", "--restart"]).exit_code == 0  # trained again
    again = curve()
    assert [json.loads(line)["epoch"] for line in again.splitlines()] == [1, 2] and again != first
