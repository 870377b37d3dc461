"""The one-way flow holds: config -> plan -> engine -> state -> trail, with the CLI, the sandbox and doctor outside."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest


def _imported_by(module: str) -> set[str]:
    """The orchestrator modules a fresh interpreter loads to import `module`."""
    code = (
        f"import sys, json, {module}; print(json.dumps(sorted(m for m in sys.modules if m.startswith('orchestrator'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout))


@pytest.mark.process
@pytest.mark.parametrize("module", ["orchestrator.engine.executor", "orchestrator.plan", "orchestrator.gates"])
def test_the_engine_needs_no_cli_sandbox_or_doctor(module: str) -> None:
    """Importing the engine, the planner or the gates loads neither the CLI, the sandbox nor doctor."""
    loaded = _imported_by(module)
    assert not {m for m in loaded if m.startswith(("orchestrator.cli", "ecsbox", "orchestrator.doctor"))}


@pytest.mark.process
def test_the_planner_does_not_import_the_engine() -> None:
    """The plan is handed to the engine; the planner never imports it (no plan <-> engine cycle)."""
    assert not {m for m in _imported_by("orchestrator.plan") if m.startswith("orchestrator.engine")}


@pytest.mark.process
def test_the_emulator_imports_nothing_of_the_product() -> None:
    """ecsbox/ is its own package: importing every one of its modules loads no orchestrator module, and its
    source names none (a lazy import inside a function would not show in sys.modules)."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "ecsbox"
    modules = sorted(f"ecsbox.{p.stem}" for p in root.glob("*.py") if p.stem != "__init__")
    assert "ecsbox.agent" in modules and "ecsbox.daemon" in modules
    loaded = _imported_by(", ".join(["ecsbox", *modules]))
    assert loaded == set()
    for path in root.glob("*.py"):
        imports = re.findall(r"^\s*(?:from|import)\s+(\S+)", path.read_text(), re.M)
        assert not [name for name in imports if name.startswith("orchestrator")], path


# ------------------------------------------------------------------ the import graph and the AWS boundary
ORCHESTRATOR = Path(__file__).resolve().parents[2] / "orchestrator"


def _modules() -> dict[str, Path]:
    """Every module of orchestrator/ by dotted name (a package by its __init__)."""
    out = {}
    for path in ORCHESTRATOR.rglob("*.py"):
        parts = list(path.relative_to(ORCHESTRATOR.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def import_graph() -> dict[str, set[str]]:
    """Module -> the orchestrator modules it imports anywhere: at the top, inside a function, under TYPE_CHECKING.
    `from pkg import name` is an edge to pkg.name when that is a module, else to pkg."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                edges.update(a.name for a in node.names if a.name in modules)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    head = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(head + ([node.module] if node.module else []))
                for alias in node.names:
                    if f"{base}.{alias.name}" in modules:
                        edges.add(f"{base}.{alias.name}")
                    elif base in modules:
                        edges.add(base)
        edges.discard(name)
        graph[name] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """The strongly connected components of more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(frozenset(component))
    return found


def test_the_cycle_finder_finds_a_cycle() -> None:
    """The finder itself works (else the tests below pass on anything): a -> b -> c -> a is one cycle, d is not."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set()}
    assert cycles(graph) == [frozenset({"a", "b", "c"})]
    assert "orchestrator.doctor.context" in import_graph()["orchestrator.doctor.checks"]


def test_no_import_cycle_among_the_modules() -> None:
    """No module of orchestrator/ imports, even lazily or for typing only, a module that imports it back."""
    found = [sorted(c) for c in cycles(import_graph())]
    assert not found, f"import cycles: {found}"


def _client_calls(path: Path) -> list[str]:
    """Where a file makes a boto3 client or resource, or imports boto3: `x.client("ecs")`, `boto3.client(...)`,
    `session().client(service_name=...)`."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
            if any(n == "boto3" or n.startswith("boto3.") for n in names):
                found.append(f"{path.name}:{node.lineno} imports boto3")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr not in ("client", "resource"):
                continue
            named = any(k.arg == "service_name" for k in node.keywords)
            literal = bool(node.args) and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
            if named or literal:
                found.append(f"{path.name}:{node.lineno} makes a {node.func.attr}")
    return found


def test_boto3_clients_are_made_only_inside_the_aws_adapters() -> None:
    """Every AWS call goes through an adapter of orchestrator/aws/ (one error translation, one IAM table): no
    other module imports boto3 or makes a client."""
    outside = [p for p in ORCHESTRATOR.rglob("*.py") if "aws" not in p.relative_to(ORCHESTRATOR).parts[:1]]
    found = [hit for p in outside for hit in _client_calls(p)]
    assert not found, f"boto3 clients made outside orchestrator/aws/: {found}"
    adapters = [hit for p in (ORCHESTRATOR / "aws").glob("*.py") for hit in _client_calls(p)]
    assert any("session.py" in hit for hit in adapters)  # the scan sees the one place that makes them
