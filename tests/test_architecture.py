"""The layer contract of ARCHITECTURE.md holds: imports point down (import-linter, as `make lint` runs it), no
module imports itself through others (no import circle, lazy imports inside functions included), and every module
imports as the first one of a fresh interpreter (a submodule's import runs its packages' __init__ first, which the
import graph does not show: config.overrides -> experiment.validate -> config.base -> config/__init__ ->
config.overrides failed only when experiment.validate came first)."""

from __future__ import annotations

import concurrent.futures
import os
import pkgutil
import subprocess
import sys

import grimp
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _import_circles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Every set of two or more modules that import one another, directly or through others (Tarjan)."""
    modules = sorted(graph.modules)
    imports = {module: sorted(graph.find_modules_directly_imported_by(module)) for module in modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in imports[module]:
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for module in modules:
        if module not in index:
            visit(module)
    return circles


def test_imports_point_down_the_layers_of_pyproject_toml():
    # import-linter's own command (what `make lint` runs), on this checkout's pyproject.toml.
    command = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"
    result = subprocess.run([sys.executable, "-c", command, "--no-cache"], cwd=REPO, capture_output=True, text=True,
                            timeout=300, env={**os.environ, "PYTHONPATH": REPO})
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "1 kept, 0 broken" in result.stdout


def test_no_module_imports_itself_through_others():
    assert _import_circles(grimp.build_graph("imagenet_jax")) == []


def test_the_circle_finder_finds_a_circle():
    graph = grimp.ImportGraph()
    for module in ("pkg", "pkg.a", "pkg.b", "pkg.c"):
        graph.add_module(module)
    graph.add_import(importer="pkg.a", imported="pkg.b")
    graph.add_import(importer="pkg.b", imported="pkg.a")
    graph.add_import(importer="pkg.c", imported="pkg.a")
    assert _import_circles(graph) == [["pkg.a", "pkg.b"]]


def _import_failure(module: str, root: str = REPO) -> str | None:
    """None if `module` (under `root`) imports in a fresh interpreter, else the end of its traceback."""
    result = subprocess.run([sys.executable, "-c", f"import {module}"], cwd=root, capture_output=True, text=True,
                            timeout=300, env={**os.environ, "PYTHONPATH": root})
    return None if result.returncode == 0 else f"{module}: {result.stderr.strip().splitlines()[-1]}"


@pytest.mark.slow
def test_every_module_imports_first_in_a_fresh_interpreter():
    import imagenet_jax

    modules = ["imagenet_jax", *(info.name for info in pkgutil.walk_packages(imagenet_jax.__path__, "imagenet_jax."))]
    assert len(modules) > 150
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        failures = [failure for failure in pool.map(_import_failure, modules) if failure]
    assert failures == []


def test_the_fresh_import_check_reports_a_module_that_fails_only_when_imported_first(tmp_path):
    # The shape of the config/validate circle: b_mod -> a_pkg.base -> a_pkg/__init__ -> a_pkg.helper -> b_mod.
    package = tmp_path / "a_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("from a_pkg.helper import H\n")
    (package / "helper.py").write_text("from b_mod import F\nH = F\n")
    (package / "base.py").write_text("BASE = 1\n")
    (tmp_path / "b_mod.py").write_text("from a_pkg.base import BASE\nF = BASE\n")
    assert _import_failure("a_pkg", str(tmp_path)) is None
    assert "circular import" in (_import_failure("b_mod", str(tmp_path)) or "")
