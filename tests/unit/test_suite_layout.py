"""The suite's own rules: fixtures are shared through conftest.py files, never imported by a test module."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def _is_fixture(node: ast.AST) -> bool:
    """A function decorated with pytest.fixture (bare or called)."""
    if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        return False
    for deco in node.decorator_list:
        target = deco.func if isinstance(deco, ast.Call) else deco
        name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")
        if name == "fixture":
            return True
    return False


def _fixtures_of(path: Path) -> set[str]:
    """The names of the fixtures a module defines at its top level."""
    return {node.name for node in ast.parse(path.read_text()).body if _is_fixture(node)}


def fixture_imports(tests: Path) -> list[str]:
    """Every `from tests.x import fixture` in a module that is not a conftest.py, as "file: module.name"."""
    found = []
    for path in sorted(tests.rglob("*.py")):
        if path.name == "conftest.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("tests.")):
                continue
            source = tests.parent.joinpath(*node.module.split(".")).with_suffix(".py")
            if not source.exists():
                continue
            fixtures = _fixtures_of(source)
            found += [f"{path.relative_to(tests)}: {node.module}.{a.name}" for a in node.names if a.name in fixtures]
    return found


def test_no_test_module_imports_a_fixture() -> None:
    """A fixture another module defines is used by name through a conftest.py: importing it shadows the
    conftest's fixture of the same name and needs a noqa for ruff (F401, F811)."""
    assert fixture_imports(TESTS) == []


def test_the_rule_sees_an_imported_fixture(tmp_path: Path) -> None:
    """A module importing another module's fixture is found; importing its helpers is not."""
    pkg = tmp_path / "tests" / "functional"
    pkg.mkdir(parents=True)
    (pkg / "world.py").write_text(
        "import pytest\n\n@pytest.fixture\ndef world():\n    pass\n\ndef snail():\n    pass\n"
    )
    (pkg / "test_a.py").write_text("from tests.functional.world import snail, world\n")
    assert fixture_imports(tmp_path / "tests") == ["functional/test_a.py: tests.functional.world.world"]
