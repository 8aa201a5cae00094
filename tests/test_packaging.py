"""Packaging hygiene: license, one version source, the formats and commands documented in docs/."""

from __future__ import annotations

import re
import tomllib

from packaging.requirements import Requirement

import featcache
from cli.commands_doc import commands_markdown
from featcache.cache.schema import JSON_ATTRS, ROW_FIELDS, TEMPORAL_FILE
from tests.conftest import REPO_ROOT

PYPROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())


def test_license_file_matches_the_spdx_expression():
    project = PYPROJECT["project"]
    assert project["license"] == "MIT" and project["license-files"] == ["LICENSE"]
    text = (REPO_ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License") and "Permission is hereby granted, free of charge" in text
    setuptools = next(Requirement(r) for r in PYPROJECT["build-system"]["requires"] if r.startswith("setuptools"))
    assert setuptools.specifier.contains("77") and not setuptools.specifier.contains("76.9")  # PEP 639 support


def test_one_version_source():
    project = PYPROJECT["project"]
    assert "version" not in project and "version" in project["dynamic"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "featcache.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+([.-]?\w+)?", featcache.__version__)
    source = (REPO_ROOT / "featcache" / "__init__.py").read_text()
    assert len(re.findall(r"^__version__ = ", source, flags=re.M)) == 1


def test_commands_doc_is_generated_from_the_app():
    committed = (REPO_ROOT / "docs" / "commands.md").read_text()
    assert committed == commands_markdown(), "docs/commands.md is stale: run `make docs` (python -m cli.commands_doc)"
    for command in ("prepare", "extract", "train-head", "grid", "tsn", "report", "data check", "data synth"):
        assert f"## `featcache {command}`" in committed
    assert "`timm:" in committed or "timm:<model_name>" in committed


def test_formats_doc_covers_the_schema():
    text = (REPO_ROOT / "docs" / "formats.md").read_text()
    for name in (*ROW_FIELDS, *JSON_ATTRS, "features", "logits", "complete", "weights", "rows_sha256",
                 TEMPORAL_FILE, "/dynamic/data", "/flow/data", "/videos/stamp", "metrics.json", "history.jsonl",
                 "config.yaml", "model.pt", "<video>/img_00001.jpg", ".gif"):
        assert f"`{name}" in text, name
    assert "(metrics.md)" in text and "(commands.md)" in text
