"""The suite's own rules: fixtures are shared through conftest.py files, never imported by a test module; Ctrl-C
is a KeyboardInterrupt in every test, however the suite was started."""

from __future__ import annotations

import ast
import os
import signal
import subprocess
import sys
import textwrap
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


def test_ctrl_c_is_a_keyboard_interrupt_in_the_tests() -> None:
    """The tests run with Python's own SIGINT handler (tests/conftest.py), so `_thread.interrupt_main()` and a
    real Ctrl-C raise KeyboardInterrupt."""
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_suite_started_with_sigint_ignored_still_gets_pythons_handler() -> None:
    """A background job of a script inherits SIGINT ignored (the fleet Ctrl-C test failed so, DID NOT RAISE
    KeyboardInterrupt): pytest started that way still runs its tests with Python's handler."""
    this = f"{Path(__file__).resolve()}::test_ctrl_c_is_a_keyboard_interrupt_in_the_tests"
    r = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist", this],
        cwd=TESTS.parent,
        env={**os.environ, "PYTHONPATH": str(TESTS.parent)},
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stdout + r.stderr


def test_a_signal_handler_a_test_installs_is_gone_for_the_next_test(tmp_path: Path) -> None:
    """tests/conftest.py puts back after each test the SIGTERM and SIGINT handlers it found (snail's main() in
    process installs a SIGTERM handler; under xdist the next file on that worker used to inherit it)."""
    (tmp_path / "test_two.py").write_text(
        textwrap.dedent("""\
            import signal

            def test_installs():
                signal.signal(signal.SIGTERM, lambda *a: None)
                signal.signal(signal.SIGINT, lambda *a: None)

            def test_finds_what_was_there():
                assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
                assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
            """)
    )
    r = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist", "-p", "tests.conftest"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(TESTS.parent)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0 and "2 passed" in r.stdout, r.stdout + r.stderr
