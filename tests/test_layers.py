"""The package's layers run one way, read from its own imports (so the rule holds from now on).

    nasnet_keras (models, training, data) <- tuner (search) <- savedmodels (export) <- CLI (nasnet_demo)

Checked twice: statically, over every import statement of every module (function-local
ones included, so a lazy import cannot hide an upward edge or a cycle), and at run time, by
importing every module of a layer in a fresh `python -c` and looking at what got loaded.
"""

import ast
import os
import subprocess
import sys
from importlib import metadata

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAYERS = {"nasnet_keras": 0, "tuner": 1, "savedmodels": 2, "nasnet_demo": 3}


def _modules() -> dict[str, str]:
    found = {"nasnet_demo": os.path.join(ROOT, "nasnet_demo.py")}
    for package in ("nasnet_keras", "tuner", "savedmodels"):
        for directory, _, files in os.walk(os.path.join(ROOT, package)):
            for name in files:
                if name.endswith(".py"):
                    path = os.path.join(directory, name)
                    module = os.path.relpath(path, ROOT)[:-3].replace(os.sep, ".")
                    found[module.removesuffix(".__init__")] = path
    return found


MODULES = _modules()


def _imports(module: str, path: str) -> set[str]:
    """The project modules `module` imports (the longest known prefix of each imported name)."""
    names = set()
    package = module if path.endswith("__init__.py") else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(open(path, encoding="utf-8").read())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) in (
                "import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant):
            names.add(str(node.args[0].value))
    targets = set()
    for name in names:
        parts = name.split(".")
        while parts and ".".join(parts) not in MODULES:
            parts.pop()
        if parts and ".".join(parts) != module:
            targets.add(".".join(parts))
    return targets


GRAPH = {module: _imports(module, path) for module, path in MODULES.items()}


def test_the_walk_sees_the_package():
    assert {"nasnet_keras.genotype", "nasnet_keras.cli", "tuner.oracles", "savedmodels.exporter",
            "nasnet_demo"} <= set(MODULES)
    assert "nasnet_keras.genotype" in GRAPH["nasnet_keras.applications"]  # edges are found
    assert {"tuner.search", "nasnet_keras.variants_cli"} <= GRAPH["nasnet_demo"]  # local imports too


def test_no_upward_imports():
    upward = sorted(f"{module} -> {target}" for module, targets in GRAPH.items() for target in targets
                    if LAYERS[target.split(".")[0]] > LAYERS[module.split(".")[0]])
    assert upward == []


def test_no_import_cycles():
    # Package __init__ modules only re-export their submodules; a cycle is two modules that use each other.
    packages = {m for m, p in MODULES.items() if p.endswith("__init__.py")}
    graph = {m: {t for t in targets if t not in packages} for m, targets in GRAPH.items() if m not in packages}
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(node):  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in graph[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    assert cycles == []


@pytest.mark.parametrize("layer, forbidden", [("nasnet_keras", ("tuner", "savedmodels")), ("tuner", ("savedmodels",))])
def test_importing_a_layer_loads_nothing_above_it(layer, forbidden):
    modules = sorted(m for m in MODULES if m.split(".")[0] == layer)
    code = ("import importlib, sys\n"
            f"for name in {modules!r}:\n    importlib.import_module(name)\n"
            f"print(sorted({{m.split('.')[0] for m in sys.modules}} & {set(forbidden)!r}))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_subcommands_are_entry_points_of_their_own_modules():
    from nasnet_keras import cli

    found = {ep.name: ep.value for ep in metadata.entry_points(group=cli.ENTRY_POINT_GROUP)}
    assert found == {"profile": "nasnet_keras.variants_cli:register", "train": "nasnet_keras.training.cli:register",
                     "search": "tuner.cli:register", "export": "savedmodels.cli:register",
                     "predict": "savedmodels.predict:register", "detect": "savedmodels.detection.cli:register",
                     "demo": "nasnet_demo:register"}
    commands = set(cli.build_parser()._subparsers._group_actions[0].choices)
    assert commands == {"profile", "variants", "train", "search", "export", "predict", "detect", "demo"}
