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

import pytest

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


@pytest.mark.process
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


@pytest.mark.process
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


# ---- the process mark ------------------------------------------------------------------------------------------

_PROCESS_CALLS = {"run", "Popen", "call", "check_call", "check_output"}


def _starts_a_process(call: ast.Call) -> bool:
    """`start_snail(…)`, `snail(…, process=True)` (any helper passing process=True) or `subprocess.run(…)` etc."""
    func = call.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    if name == "start_snail":
        return True
    if any(k.arg == "process" and isinstance(k.value, ast.Constant) and k.value.value is True for k in call.keywords):
        return True
    return (
        isinstance(func, ast.Attribute)
        and isinstance(func.value, ast.Name)
        and func.value.id == "subprocess"
        and (name in _PROCESS_CALLS)
    )


def _marked_process(decorators: list[ast.expr]) -> bool:
    """One of the decorators (or pytestmark's values) is pytest.mark.process."""
    for deco in decorators:
        for node in ast.walk(deco):
            if isinstance(node, ast.Attribute) and node.attr == "process":
                value = node.value
                if isinstance(value, ast.Attribute) and value.attr == "mark":
                    return True
    return False


def unmarked_process_tests(path: Path) -> list[str]:
    """The tests of a module that start a process (themselves, through a helper or a fixture of the same module)
    without @pytest.mark.process on the test, its class or the module's pytestmark."""
    tree = ast.parse(path.read_text())
    module_marks = [
        node.value
        for node in tree.body
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "pytestmark" for t in node.targets)
    ]
    if _marked_process(module_marks):
        return []
    functions: dict[str, ast.FunctionDef | ast.AsyncFunctionDef] = {}
    tests: list[tuple[ast.FunctionDef | ast.AsyncFunctionDef, list[ast.expr]]] = []
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef) and item.name.startswith("test"):
                    tests.append((item, node.decorator_list + item.decorator_list))
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            functions[node.name] = node
            if node.name.startswith("test"):
                tests.append((node, node.decorator_list))

    def reaches(fn: ast.AST, seen: set[str]) -> bool:
        used = {a.arg for a in fn.args.args} if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef) else set()
        for node in ast.walk(fn):
            if isinstance(node, ast.Call) and _starts_a_process(node):
                return True
            if isinstance(node, ast.Name):
                used.add(node.id)
        for name in sorted(used & functions.keys() - seen):
            seen.add(name)
            if reaches(functions[name], seen):
                return True
        return False

    return [f"{path.name}::{fn.name}" for fn, marks in tests if reaches(fn, {fn.name}) and not _marked_process(marks)]


def test_every_test_that_starts_a_process_is_marked_process() -> None:
    """`snail()` runs the CLI in process; a test that starts a process (start_snail, snail(process=True), any
    subprocess) is one where the process is the point, and says so with @pytest.mark.process."""
    found = [hit for path in sorted(TESTS.rglob("test_*.py")) for hit in unmarked_process_tests(path)]
    assert found == []


def test_the_process_rule_sees_a_helper_and_a_fixture(tmp_path: Path) -> None:
    """A test reaching a process through a helper or a same-module fixture is found unless it (or the module)
    carries the mark; snail() without process=True is not a process."""
    (tmp_path / "test_a.py").write_text(
        textwrap.dedent("""\
            import subprocess
            import pytest

            def helper():
                return subprocess.run(["true"])

            @pytest.fixture
            def proc():
                return start_snail(where, "run")

            def test_helper():
                helper()

            def test_fixture(proc):
                pass

            def test_flag():
                snail(where, "kill", process=True)

            def test_in_process():
                snail(where, "status")

            @pytest.mark.process
            def test_marked():
                helper()

            class TestGroup:
                def test_in_a_class(self):
                    helper()
            """)
    )
    assert unmarked_process_tests(tmp_path / "test_a.py") == [
        "test_a.py::test_helper",
        "test_a.py::test_fixture",
        "test_a.py::test_flag",
        "test_a.py::test_in_a_class",
    ]
    (tmp_path / "test_b.py").write_text(
        "import pytest, subprocess\npytestmark = [pytest.mark.process]\ndef test_x():\n    subprocess.run(['true'])\n"
    )
    assert unmarked_process_tests(tmp_path / "test_b.py") == []
