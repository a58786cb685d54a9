"""The dependency rules the architecture page states, read from every module's import statements
(deferred imports inside functions included): core imports no task and nothing of ours above it,
runtime imports core only, a task imports core and runtime but never another task, and cls's
subpackages are layered without a cycle."""
import ast
import os

import pytest

ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "nat_tasks")

# package -> the packages of ours it may import (besides itself)
ALLOWED = {
    "core": set(),
    "runtime": {"core"},
    "det": {"core", "runtime"},
    "reid": {"core", "runtime"},
    "cls": {"core", "runtime"},
}
CLS_LAYERS = {  # cls subpackage -> the cls subpackages it may import
    "data": set(),
    "models": set(),
    "methods": set(),
    "training": {"data", "models", "methods"},
    "analysis": {"data"},
    "evaluation": {"data", "models", "methods", "training", "analysis"},
    "demos": {"data", "models", "methods", "training", "analysis", "evaluation"},
}


def modules():
    for folder, _, files in os.walk(ROOT):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                dotted = os.path.relpath(path, os.path.dirname(ROOT))[:-3].replace(os.sep, ".")
                yield path, dotted.removesuffix(".__init__"), name == "__init__.py"


def imported(path, dotted, is_package):
    """Every nat_tasks module ``path`` imports, as dotted names."""
    package = dotted if is_package else dotted.rpartition(".")[0]
    for node in ast.walk(ast.parse(open(path).read(), path)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            names = [base]
        else:
            continue
        yield from (name for name in names if name.split(".")[0] == "nat_tasks")


def layer_of(dotted):
    parts = dotted.split(".")
    return parts[1] if len(parts) > 1 else None


def test_the_layering_rules_find_a_task_importing_another(tmp_path):
    module = tmp_path / "nat_tasks" / "det" / "bad.py"
    module.parent.mkdir(parents=True)
    module.write_text("from ..reid import ranking\nfrom nat_tasks.core import pgd\n")
    assert list(imported(str(module), "nat_tasks.det.bad", False)) == ["nat_tasks.reid", "nat_tasks.core"]


@pytest.mark.parametrize("path,dotted,is_package", [pytest.param(*m, id=m[1]) for m in modules()])
def test_each_module_imports_only_what_its_layer_may(path, dotted, is_package):
    own = layer_of(dotted)
    if own is None:  # nat_tasks/__init__.py
        return
    for name in imported(path, dotted, is_package):
        other = layer_of(name)
        assert other in ALLOWED[own] | {own, None}, f"{dotted} imports {name}"
        if own == "cls" == other and len(dotted.split(".")) > 2 and len(name.split(".")) > 2:
            mine, theirs = dotted.split(".")[2], name.split(".")[2]
            if mine in CLS_LAYERS and theirs != mine:
                assert theirs in CLS_LAYERS[mine], f"{dotted} imports {name}"
