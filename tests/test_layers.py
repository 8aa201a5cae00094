"""The house's layers (docs/DESIGN.md): imports run one way, down, and never in a circle.

Every import is read with ``ast``, lazy ones inside functions included, so a deferred import cannot hide
an upward dependency or a circle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# A package may import packages on lower floors of its own stack, and (heads, cli) any featcache package.
FLOORS = {
    "featcache": [
        {"featcache.errors"},
        {"featcache.utils"},
        {"featcache.media", "featcache.cache"},
        {"featcache.data"},
        {"featcache.representations", "featcache.backbones"},
        {"featcache.extraction"},
        {"featcache.api"},
        {"featcache"},  # featcache/__init__.py: the public names, lazily
    ],
    "heads": [
        {"heads.nn", "heads.evaluation"},
        {"heads.optim", "heads.losses", "heads.miners", "heads.samplers", "heads.models"},
        {"heads.training"},
        {"heads.finetune"},
        {"heads.api", "heads.inference"},
        {"heads.experiments"},
        {"heads"},  # heads/__init__.py: the public names
    ],
    "cli": [{"cli"}],
}
STACK_ORDER = ["featcache", "heads", "cli"]  # a stack may import the stacks before it
ENTRY_POINTS = {"featcache.__main__"}  # ``python -m featcache`` runs the CLI: nothing imports it


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(source: str, module: str, is_package: bool, modules: set[str] = frozenset()) -> set[str]:
    """Every project module named by an import statement, absolute or relative, at any depth.

    ``from package import submodule`` depends on the submodule, not on the package's ``__init__``
    (``modules`` says which names are modules); any other imported name depends on ``package`` itself.
    """
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")[: len(module.split(".")) - node.level + (1 if is_package else 0)]
                base = ".".join(anchor + ([base] if base else []))
            names = {f"{base}.{alias.name}" for alias in node.names}
            found.update(names)
            if not names <= modules:
                found.add(base)
    return {name for name in found if name.split(".")[0] in FLOORS}


def package_of(module: str) -> str:
    """The layer a module belongs to: ``featcache.cache.schema`` -> ``featcache.cache``."""
    parts = module.split(".")
    if parts[0] == "cli":
        return "cli"
    if len(parts) == 1:
        return parts[0]
    candidate = ".".join(parts[:2])
    if (REPO / Path(*parts[:2])).is_dir() or (REPO / Path(*parts[:2])).with_suffix(".py").is_file():
        return candidate
    return parts[0]  # a name re-exported by the top package (``from featcache import read_temporal``)


def floor_of(package: str) -> tuple[int, int]:
    stack = package.split(".")[0]
    for index, floor in enumerate(FLOORS[stack]):
        if package in floor:
            return STACK_ORDER.index(stack), index
    raise AssertionError(f"{package} is on no floor of docs/DESIGN.md: add it to FLOORS (and the diagram)")


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    problems = []
    for module, targets in sorted(graph.items()):
        if module in ENTRY_POINTS:
            continue
        here = package_of(module)
        for target in sorted(targets):
            there = package_of(target)
            if there == here:
                continue
            (stack, floor), (t_stack, t_floor) = floor_of(here), floor_of(there)
            if t_stack > stack or (t_stack == stack and t_floor >= floor):
                problems.append(f"{module} imports {target} ({there} is not below {here})")
    return problems


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan), over modules that exist."""
    nodes = set(graph)
    edges = {m: {t for t in graph[m] if t in nodes and t != m} for m in nodes}
    index, low, stack, on_stack, groups = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in edges[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(nodes):
        if node not in index:
            visit(node)
    return groups


def project_graph() -> dict[str, set[str]]:
    paths = {module_name(path): path for top in FLOORS for path in sorted((REPO / top).rglob("*.py"))}
    return {module: imported_modules(path.read_text(encoding="utf-8"), module, path.name == "__init__.py", set(paths))
            for module, path in paths.items()}


GRAPH = project_graph()


def test_every_package_has_a_floor():
    for module in set(GRAPH) - ENTRY_POINTS:
        floor_of(package_of(module))


def test_no_module_imports_upward():
    assert upward_imports(GRAPH) == []


def test_no_import_circles():
    # Package re-exports (``__init__`` importing its own modules) are part of the graph too.
    assert circles(GRAPH) == []


def test_featcache_never_imports_heads_or_cli():
    offenders = [m for m, targets in GRAPH.items() if m.startswith("featcache") and m not in ENTRY_POINTS
                 and any(t.split(".")[0] in ("heads", "cli") for t in targets)]
    assert offenders == []


@pytest.mark.parametrize("graph, expected", [
    ({"heads.nn.stacked_linear": {"heads.training.config"}}, 1),           # nn reaches up to training
    ({"featcache.cache.schema": {"heads.evaluation.metrics"}}, 1),         # stage 1 reaching into stage 2
    ({"heads.models.generator": {"heads.models.mapping_network"}}, 0),     # same package: fine
    ({"featcache.media.video": {"featcache.data.dataset"}}, 1),            # a floor up
    ({"featcache.representations.prepare": {"featcache.backbones.base"}}, 1),  # same floor, other package
    ({"cli.app": {"heads.experiments.demo", "featcache.api"}}, 0),         # the top imports anything
])
def test_the_checker_finds_upward_imports(graph, expected):
    assert len(upward_imports(graph)) == expected


def test_the_checker_finds_circles():
    graph = {"heads.experiments.report.render": {"heads.experiments.report.plots"},
             "heads.experiments.report.plots": {"heads.experiments.report.render"},
             "heads.experiments.report.runs": set()}
    assert circles(graph) == [["heads.experiments.report.plots", "heads.experiments.report.render"]]


def test_lazy_imports_count():
    source = "def f():\n    from heads.training.config import default_config\n"
    assert "heads.training.config" in imported_modules(source, "heads.nn.x", False)


def test_importing_a_submodule_does_not_import_its_package():
    source = "from heads.finetune import engine\nfrom heads.training import run_dir, DEFAULTS\n"
    found = imported_modules(source, "cli.x", False, {"heads.finetune.engine", "heads.training.run_dir"})
    assert "heads.finetune" not in found and "heads.finetune.engine" in found and "heads.training" in found
