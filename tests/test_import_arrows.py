"""The import arrows of DESIGN.md, read from the source by AST (lazy and ``TYPE_CHECKING`` imports included).

Imports only go downward: ``core`` <- ``memory``, ``policies``, ``tools`` <- ``agent`` <- ``trainers``, ``evals``.
Nothing imports ``trainers`` or ``evals`` except their own folders, their CLIs, ``benchmarks/`` and ``tests/``;
``core`` and ``memory`` import neither torch nor transformers, at any level.  Project modules also form no import
cycle, counting imports inside functions (``TYPE_CHECKING`` blocks never run, so they do not make cycles), and
every project module an import names exists.
"""

from __future__ import annotations

import ast
import re
import textwrap
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "regionreasoner"
PACKAGE_FOLDERS = ("core", "memory", "policies", "tools", "agent", "trainers", "evals")
SCRIPT_FOLDERS = ("benchmarks", "tests")

# What each package folder may import from the project (its own folder included).
ALLOWED: dict[str, frozenset[str]] = {
    "core": frozenset({"core"}),
    "memory": frozenset({"core", "memory"}),
    "policies": frozenset({"core", "policies"}),
    "tools": frozenset({"core", "tools"}),
    "agent": frozenset({"core", "memory", "policies", "tools", "agent"}),
    "trainers": frozenset({"core", "memory", "policies", "tools", "agent", "trainers"}),
    "evals": frozenset({"core", "memory", "policies", "tools", "agent", "evals"}),
}
TOP = frozenset({"trainers", "evals"})
"""Folders that only their own folder, their CLIs, benchmarks and tests import."""
NO_HEAVY = {"core": ("torch", "transformers"), "memory": ("torch", "transformers")}


@dataclass(frozen=True)
class Import:
    """One import statement's target, as the importing module sees it."""

    module: str
    """The importing module (``regionreasoner.agent.api``, ``tests.test_imports``)."""
    path: str
    """Its file, relative to the repository root."""
    line: int
    target: str
    """The module imported (absolute; for ``from m import name`` the submodule ``m.name`` when it is a module)."""
    lazy: bool
    """Inside a function: runs when the function is first called."""
    type_checking: bool
    """Inside ``if TYPE_CHECKING:``: read by type checkers only, never run."""
    dynamic: bool = False
    """A string naming a project module (``importlib.import_module(...)``, a lazy-export table)."""

    @property
    def where(self) -> str:
        """``path:line`` of the statement."""
        return f"{self.path}:{self.line}"


def module_name(path: Path, root: Path = ROOT) -> str:
    """The import name of a source file: ``agent/api.py`` -> ``regionreasoner.agent.api``, tests keep their path."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    if parts[0] in PACKAGE_FOLDERS:
        parts = [PACKAGE, *parts]
    return ".".join(parts)


def project_files(root: Path = ROOT) -> dict[str, Path]:
    """Every module of the package folders, benchmarks/ and tests/, by import name."""
    files: dict[str, Path] = {}
    for folder in (*PACKAGE_FOLDERS, *SCRIPT_FOLDERS):
        for path in sorted((root / folder).rglob("*.py")):
            if "__pycache__" not in path.parts:
                files[module_name(path, root)] = path
    return files


def folder_of(module: str) -> str | None:
    """The project folder a module belongs to (``core``, ..., ``tests``); None for third-party modules."""
    parts = module.split(".")
    if parts[0] == PACKAGE:
        return parts[1] if len(parts) > 1 else PACKAGE
    return parts[0] if parts[0] in SCRIPT_FOLDERS else None


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


class _Collector(ast.NodeVisitor):
    def __init__(self, module: str, path: str, is_package: bool, modules: Iterable[str]) -> None:
        self.module = module
        self.path = path
        self.package = module if is_package else module.rpartition(".")[0]
        self.modules = frozenset(modules)
        self.found: list[Import] = []
        self.unresolved: list[str] = []
        self._depth = 0
        self._type_checking = 0

    def _add(self, node: ast.AST, target: str, *, dynamic: bool = False) -> None:
        self.found.append(
            Import(
                self.module,
                self.path,
                getattr(node, "lineno", 0),
                target,
                lazy=self._depth > 0,
                type_checking=self._type_checking > 0,
                dynamic=dynamic,
            )
        )

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> None:
        self._depth += 1
        self.generic_visit(node)
        self._depth -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _function

    def visit_If(self, node: ast.If) -> None:
        if not _is_type_checking(node.test):
            self.generic_visit(node)
            return
        self._type_checking += 1
        for child in node.body:
            self.visit(child)
        self._type_checking -= 1
        for child in node.orelse:
            self.visit(child)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(node, alias.name)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = node.module or ""
        if node.level:
            parts = self.package.split(".") if self.package else []
            if node.level - 1 > len(parts) or not parts:
                self.unresolved.append(f"{self.path}:{node.lineno}: relative import above the package")
                return
            parts = parts[: len(parts) - (node.level - 1)]
            base = ".".join([*parts, *([node.module] if node.module else [])])
        for alias in node.names:
            sub = f"{base}.{alias.name}"
            self._add(node, sub if sub in self.modules else base)

    def visit_Call(self, node: ast.Call) -> None:
        # importlib.import_module("torch"), __import__("regionreasoner.x.y"): any module named by a literal
        name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
        first = node.args[0] if node.args else None
        if name in ("import_module", "__import__") and isinstance(first, ast.Constant) and isinstance(first.value, str):
            self._add(node, first.value, dynamic=True)
        self.generic_visit(node)

    def visit_Dict(self, node: ast.Dict) -> None:
        # lazy-export tables: {"RegionMemory": "regionreasoner.memory.store", ...}, read by a module __getattr__
        for value in node.values:
            if isinstance(value, ast.Constant) and isinstance(value.value, str) and value.value in self.modules:
                self._add(value, value.value, dynamic=True)
        self.generic_visit(node)


def imports_of(
    module: str, source: str, modules: Iterable[str], *, is_package: bool = False, path: str = "<source>"
) -> list[Import]:
    """Every import of ``source`` (the text of ``module``, read from ``path``), at any depth, relative ones absolute."""
    collector = _Collector(module, path, is_package, modules)
    collector.visit(ast.parse(source))
    if collector.unresolved:
        raise AssertionError("\n".join(collector.unresolved))
    return collector.found


def project_imports(root: Path = ROOT) -> list[Import]:
    """The imports of every project module."""
    files = project_files(root)
    out: list[Import] = []
    for module, path in files.items():
        text = path.read_text(encoding="utf-8")
        rel = str(path.relative_to(root))
        out += imports_of(module, text, files, is_package=path.name == "__init__.py", path=rel)
    return out


def _is_cli(module: str) -> bool:
    last = module.rpartition(".")[2]
    return last == "cli" or last.startswith("cli_")


def violation(imp: Import) -> str | None:
    """Why an import breaks an arrow of DESIGN.md, or None when it is allowed."""
    source = folder_of(imp.module)
    target = folder_of(imp.target)
    if source is None or source in SCRIPT_FOLDERS or source == PACKAGE:
        return None
    kind = "TYPE_CHECKING import" if imp.type_checking else "lazy import" if imp.lazy else "import"
    heavy = imp.target.split(".")[0]
    if heavy in NO_HEAVY.get(source, ()):
        return f"{imp.where}: {source}/ imports {imp.target} ({kind}): {source}/ imports no torch, no transformers"
    if target is None or target == PACKAGE:
        return None
    if target in SCRIPT_FOLDERS:
        return f"{imp.where}: {source}/ imports {target}/ ({imp.target}): the package never imports {target}/"
    if target in TOP and target != source and not (_is_cli(imp.module) and source in TOP):
        return (
            f"{imp.where}: {source}/ imports {target}/ ({kind} of {imp.target}): only {target}/ itself, the CLIs of "
            "trainers/ and evals/, benchmarks/ and tests/ import it"
        )
    if target not in ALLOWED[source] and not (target in TOP and _is_cli(imp.module) and source in TOP):
        allowed = ", ".join(sorted(ALLOWED[source] - {source})) or "no other folder"
        return f"{imp.where}: {source}/ imports {target}/ ({kind} of {imp.target}): {source}/ may import {allowed}"
    return None


def missing_modules(imports: Iterable[Import], modules: Iterable[str]) -> list[str]:
    """Imports naming a project module that does not exist (a lazy one fails only when its function runs)."""
    known = set(modules)
    packages = {m.rpartition(".")[0] for m in known} | {PACKAGE}
    return [
        f"{imp.where}: imports {imp.target}, which is not a module of the project"
        for imp in imports
        if folder_of(imp.target) in (*PACKAGE_FOLDERS, PACKAGE) and imp.target not in known | packages
    ]


def import_cycles(imports: Iterable[Import]) -> list[list[str]]:
    """Cycles among project modules (strongly connected components of more than one module, or self-imports).

    Imports inside functions count (a lazy cycle still couples the two modules and breaks when the call order
    changes); ``TYPE_CHECKING`` imports do not (they never run: that block is the way to name a type upward).
    """
    graph: dict[str, set[str]] = {}
    for imp in imports:
        if not imp.type_checking and folder_of(imp.target) is not None:
            graph.setdefault(imp.module, set()).add(imp.target)
            graph.setdefault(imp.target, set())
    return [sorted(c) for c in _components(graph) if len(c) > 1 or next(iter(c)) in graph[next(iter(c))]]


def _components(graph: Mapping[str, set[str]]) -> Iterator[set[str]]:
    """Tarjan's strongly connected components, iteratively (no recursion limit)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component: set[str] = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.add(member)
                        if member == node:
                            break
                    yield component


def _cycle_report(cycles: list[list[str]], imports: Iterable[Import]) -> str:
    lines = []
    for cycle in cycles:
        members = set(cycle)
        edges = [
            f"    {imp.where}: {imp.module} -> {imp.target}{' (lazy)' if imp.lazy else ''}"
            for imp in imports
            if imp.module in members and imp.target in members and not imp.type_checking
        ]
        lines.append("cycle: " + " <-> ".join(cycle) + "\n" + "\n".join(sorted(set(edges))))
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------ the project


@pytest.fixture(scope="module")
def imports() -> list[Import]:
    found = project_imports()
    assert len({imp.module for imp in found}) > 50, "the collector found almost no module: is ROOT right?"
    return found


def test_the_project_follows_the_arrows(imports: list[Import]) -> None:
    problems = sorted({p for imp in imports if (p := violation(imp)) is not None})
    assert not problems, "imports against DESIGN.md's arrows:\n" + "\n".join(problems)


def test_every_imported_project_module_exists(imports: list[Import]) -> None:
    problems = missing_modules(imports, project_files())
    assert not problems, "\n".join(problems)


def test_project_modules_form_no_import_cycle(imports: list[Import]) -> None:
    cycles = import_cycles(imports)
    assert not cycles, "import cycles (lazy imports included):\n" + _cycle_report(cycles, imports)


# ------------------------------------------------------------------------------------------------ the checker


MODULES = [
    "regionreasoner.core",
    "regionreasoner.core.geometry",
    "regionreasoner.policies",
    "regionreasoner.policies.base",
    "regionreasoner.policies.scripted",
    "regionreasoner.agent",
    "regionreasoner.agent.api",
    "regionreasoner.trainers",
    "regionreasoner.trainers.cli",
    "regionreasoner.evals",
    "regionreasoner.evals.cli",
    "regionreasoner.evals.metrics",
]


def _violations(module: str, source: str, *, is_package: bool = False) -> list[str]:
    found = imports_of(module, textwrap.dedent(source), MODULES, is_package=is_package)
    return [p for imp in found if (p := violation(imp)) is not None]


@pytest.mark.parametrize(
    ("module", "source", "pattern"),
    [
        (
            "regionreasoner.core.geometry",
            "def f():\n    import torch\n",
            "core/ imports torch .lazy import.: core/ imports no torch",
        ),
        ("regionreasoner.core.geometry", "from transformers import AutoModel\n", "imports no torch, no transformers"),
        ("regionreasoner.core.geometry", "from regionreasoner.policies import base\n", "core/ may import no other"),
        ("regionreasoner.core.geometry", "import importlib\nimportlib.import_module('torch.nn')\n", "imports torch.nn"),
        (
            "regionreasoner.policies.base",
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from regionreasoner.agent.api import X\n",
            "policies/ imports agent/ .TYPE_CHECKING import of regionreasoner.agent.api",
        ),
        ("regionreasoner.policies.base", "from ..agent import api\n", "policies/ imports agent/"),
        ("regionreasoner.agent.api", "def f():\n    from regionreasoner.evals import metrics\n", "only evals/"),
        ("regionreasoner.agent.api", "import regionreasoner.trainers\n", "agent/ imports trainers/"),
        ("regionreasoner.evals.metrics", "from regionreasoner.trainers import cli\n", "evals/ imports trainers/"),
        ("regionreasoner.trainers.cli", "from tests.conftest import x\n", "never imports tests/"),
        ("regionreasoner.core.geometry", "_LAZY = {'Api': 'regionreasoner.agent.api'}\n", "core/ imports agent/"),
        (
            "regionreasoner.core",
            "import importlib\nimportlib.import_module('regionreasoner.agent')\n",
            "core/ imports agent/",
        ),
    ],
)
def test_forbidden_arrows_are_found(module: str, source: str, pattern: str) -> None:
    problems = _violations(module, source)
    assert len(problems) == 1
    assert re.search(pattern, problems[0]), problems[0]


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("regionreasoner.core.geometry", "import numpy as np\nfrom regionreasoner.core import geometry\n"),
        ("regionreasoner.policies.scripted", "from .base import Policy\nfrom . import base\n"),
        ("regionreasoner.agent.api", "from regionreasoner.policies.base import Policy\nimport regionreasoner.core\n"),
        ("regionreasoner.evals.cli", "def f():\n    from regionreasoner.trainers import cli\n"),
        ("regionreasoner.trainers.cli", "from regionreasoner.evals import metrics\n"),
        ("regionreasoner.evals.metrics", "from regionreasoner.agent import api\nimport torch\n"),
    ],
)
def test_allowed_arrows_pass(module: str, source: str) -> None:
    assert _violations(module, source) == []


def test_relative_imports_resolve_from_the_package() -> None:
    found = imports_of(
        "regionreasoner.policies", "from . import scripted\nfrom .base import Policy\n", MODULES, is_package=True
    )
    assert [i.target for i in found] == ["regionreasoner.policies.scripted", "regionreasoner.policies.base"]
    found = imports_of("regionreasoner.policies.scripted", "from ..core.geometry import Box\n", MODULES)
    assert [i.target for i in found] == ["regionreasoner.core.geometry"]


def test_cycles_are_found_lazy_ones_included_type_checking_ones_not() -> None:
    def graph(*edges: tuple[str, str, bool, bool]) -> list[Import]:
        return [Import(a, "<source>", 1, b, lazy=lazy, type_checking=tc) for a, b, lazy, tc in edges]

    a, b, c = "regionreasoner.evals.cli", "regionreasoner.evals.cli_run", "regionreasoner.evals.metrics"
    assert import_cycles(graph((a, b, True, False), (b, a, False, False), (b, c, False, False))) == [sorted([a, b])]
    assert import_cycles(graph((a, b, False, False), (b, c, False, False), (c, a, True, False))) == [sorted([a, b, c])]
    assert import_cycles(graph((a, b, False, False), (b, a, False, True))) == []
    assert import_cycles(graph((a, b, False, False), (b, c, False, False))) == []


def test_missing_modules_are_reported() -> None:
    found = imports_of(
        "regionreasoner.agent.api", "def f():\n    from regionreasoner.trainers.nothing import main\n", MODULES
    )
    assert missing_modules(found, MODULES) == [
        "<source>:2: imports regionreasoner.trainers.nothing, which is not a module of the project"
    ]
