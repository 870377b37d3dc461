"""${VAR} interpolation (issue 25): nested defaults work, values stay strings, `$${` is a literal, and the
variables snail sets for a command gate (SNAIL_ENDPOINT and the rest) are expanded when the gate runs, never
frozen when the file is loaded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.config import load_pipeline
from orchestrator.config.interpolation import RUN_TIME_VARIABLES, InterpolationError, expand
from orchestrator.config.model import Pipeline
from orchestrator.errors import ConfigErrors
from orchestrator.gates import GateContext, run_gate
from tests.conftest import PIPELINE

REF = "127.0.0.1:5055/shine-api-gateway@sha256:" + "a" * 64
ENDPOINT = "http://127.0.0.1:1"  # what the gate's context resolves as the endpoint: never a literal in the files


def _load(tmp_path: Path, phase_extra: str = "", pipeline: str = PIPELINE) -> Pipeline:
    (tmp_path / "phases").mkdir(exist_ok=True)
    (tmp_path / "pipeline.yaml").write_text(pipeline)
    (tmp_path / "phases" / "one.yaml").write_text(f'name: one\nimage: {{ref: "{REF}"}}\n' + phase_extra)
    (tmp_path / "phases" / "two.yaml").write_text(f'name: two\nimage: {{ref: "{REF}"}}\n')
    return load_pipeline(tmp_path / "pipeline.yaml")


def _ctx(clock, workdir: Path) -> GateContext:  # noqa: ANN001
    return GateContext(
        cluster="shine",
        service="shine-api-gateway",
        revision_arn="arn:aws:ecs:us-east-1:1:task-definition/shine-api-gateway:7",
        port=5000,
        endpoint=ENDPOINT,
        clock=clock,
        phase="one",
        workdir=str(workdir),
    )


@pytest.fixture(autouse=True)
def _unset(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SNAIL_TEST_A", "SNAIL_TEST_B", *RUN_TIME_VARIABLES):
        monkeypatch.delenv(name, raising=False)


# ------------------------------------------------------------------ the parser


@pytest.mark.parametrize(
    "text, env, expected",
    [
        ("${A:-${B}}", {"B": "b"}, "b"),
        ("${A:-${B}}", {"A": "a"}, "a"),
        ("${A:-${B:-${C:-c}}}-x", {}, "c-x"),
        ("${A:-}", {}, ""),
        ("${A:-}", {"A": ""}, ""),
        ("$${A}", {"A": "a"}, "${A}"),
        ("cost: $5 and $$ and }", {}, "cost: $5 and $$ and }"),
        ("${A:-x}y}", {}, "xy}"),
    ],
)
def test_references_expand(text: str, env: dict[str, str], expected: str) -> None:
    """Nested defaults are read to their matching brace; `$${` is a literal `${`; other `$` and `}` are text."""
    assert expand(text, env)[0] == expected


def test_a_default_is_read_only_when_used() -> None:
    """`${A:-${B}}` needs B only when A is unset or empty."""
    assert expand("${A:-${B}}", {"A": "a"})[1] == []
    assert expand("${A:-${B}}", {})[1] == ["B"]


@pytest.mark.parametrize("text", ["${", "${A", "${A:-x", "${A:-${B}", "${}", "${1}", "${A-x}", "${A:?x}", "${A B}"])
def test_malformed_references_are_refused(text: str) -> None:
    """Anything after `${` that is not NAME} or NAME:-default} is refused, never kept as text."""
    with pytest.raises(InterpolationError):
        expand(text, {"A": "a", "B": "b"})


# ------------------------------------------------------------------ through load_pipeline


def test_nested_default_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`cluster: ${A:-${B}}` is B's value when A is unset (it was the literal text `${B}` before)."""
    monkeypatch.setenv("SNAIL_TEST_B", "blue")
    p = _load(tmp_path, pipeline=PIPELINE.replace("cluster: shine", "cluster: ${SNAIL_TEST_A:-${SNAIL_TEST_B}}"))
    assert p.service.cluster == "blue"


@pytest.mark.parametrize("value", ["true", "1", "[a, b]", "{ready: true}", "null", "*x", "!!python/object x"])
def test_an_expanded_value_stays_a_string(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    """Whatever the value looks like in YAML, it is text where it lands: an environment value and a JSON
    expectation (which the loader used to keep as the literal `${...}`)."""
    monkeypatch.setenv("SNAIL_TEST_A", value)
    p = _load(
        tmp_path,
        'task: {environment: {X: "${SNAIL_TEST_A}"}}\n'
        'gates:\n  - {type: http, path: /x, expect: {json: {ready: "${SNAIL_TEST_A}"}}}\n',
    )
    one = p.phase("one")
    assert one.task.environment["X"] == value
    assert one.gates[-1].expect_json == {"ready": (value,)}


def test_escaped_reference_is_literal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`$${X}` gives the text `${X}`, not X's value."""
    monkeypatch.setenv("SNAIL_TEST_A", "secret")
    p = _load(tmp_path, 'task: {environment: {X: "$${SNAIL_TEST_A}"}}\n')
    assert p.phase("one").task.environment["X"] == "${SNAIL_TEST_A}"


def test_run_time_variable_outside_a_command_gate_says_where_it_works(tmp_path: Path) -> None:
    """${SNAIL_ENDPOINT} outside a command gate is refused, and the hint does not suggest a default that would
    freeze a stand-in endpoint into the file."""
    with pytest.raises(ConfigErrors) as exc:
        _load(tmp_path, 'gates:\n  - {type: http, url: "${SNAIL_ENDPOINT}/health"}\n')
    (error,) = exc.value.errors
    assert error.key == "gates[0].url" and error.line == 4
    assert "only for a command gate, when it runs" in error.message, error.message
    assert ":-" not in error.message, error.message


# ------------------------------------------------------------------ run time, not load time (the field finding)


@pytest.mark.parametrize(
    "gate",
    [
        # the finding: a default, as the old hint suggested, was substituted at load time
        '{type: command, run: \'test "${SNAIL_ENDPOINT:-http://frozen:9}" = "' + ENDPOINT + "\"'}",
        '{type: command, run: [test, "${SNAIL_ENDPOINT:-http://frozen:9}/health", "=", "' + ENDPOINT + '/health"]}',
        # without a default it was refused at load time ("is not set")
        '{type: command, run: [test, "${SNAIL_ENDPOINT}", "=", "' + ENDPOINT + '"]}',
        '{type: command, run: \'test "$TARGET" = "'
        + ENDPOINT
        + '/health"\', env: {TARGET: "${SNAIL_ENDPOINT}/health"}}',
        '{type: command, run: [test, "${SNAIL_PHASE}/${SNAIL_SERVICE}/${SNAIL_CLUSTER}", "=", one/shine-api-gateway/shine]}',
    ],
    ids=["shell-default", "argv-default", "argv", "env", "argv-others"],
)
def test_command_gate_sees_the_real_endpoint(tmp_path: Path, clock, gate: str) -> None:  # noqa: ANN001
    """A command gate's ${SNAIL_ENDPOINT} (with or without a default, in run: or env:) is the endpoint snail
    resolves when the gate runs, not a value frozen when the file was loaded."""
    spec = _load(tmp_path, f"gates:\n  - {gate}\n").phase("one").gates[-1]
    verdict = run_gate(spec, _ctx(clock, tmp_path))
    assert verdict.passed, (verdict.summary, verdict.evidence)


def test_escaped_run_time_reference_stays_literal(tmp_path: Path) -> None:
    """`$${SNAIL_ENDPOINT}` in a command gate is the text `${SNAIL_ENDPOINT}` when it runs (argv: snail's second
    pass; shell line: the shell gets `${`, its own syntax)."""
    from orchestrator.gates.command_env import command_argv

    p = _load(
        tmp_path,
        'gates:\n  - {type: command, run: [echo, "$${SNAIL_ENDPOINT}"]}\n  - {type: command, run: "echo $${HOME}"}\n',
    )
    argv_gate, shell_gate = p.phase("one").gates[-2:]
    assert command_argv(argv_gate.run, {"SNAIL_ENDPOINT": ENDPOINT}) == ["echo", "${SNAIL_ENDPOINT}"]
    assert command_argv(shell_gate.run, {}) == ["/bin/sh", "-c", "echo ${HOME}"]


def test_command_gate_endpoint_in_cwd(tmp_path: Path, clock) -> None:  # noqa: ANN001
    """cwd: is expanded at run time too (here with SNAIL_PHASE, a folder named after the phase)."""
    (tmp_path / "one").mkdir()
    gate = f'{{type: command, run: "test $(basename $PWD) = one", cwd: "{tmp_path}/${{SNAIL_PHASE}}"}}'
    spec = _load(tmp_path, f"gates:\n  - {gate}\n").phase("one").gates[-1]
    verdict = run_gate(spec, _ctx(clock, tmp_path))
    assert verdict.passed, verdict.summary


def test_run_time_variables_are_the_ones_the_gate_sets(tmp_path: Path, clock) -> None:  # noqa: ANN001
    """The loader's list of run-time variables is exactly the SNAIL_* set a command gate receives."""
    out = tmp_path / "env.json"
    script = (
        f"import json, os; json.dump(sorted(k for k in os.environ if k.startswith('SNAIL_')), open({str(out)!r}, 'w'))"
    )
    import sys

    spec = _load(
        tmp_path,
        "gates:\n  - {type: command, run: [" + json.dumps(sys.executable) + ", -c, " + json.dumps(script) + "]}\n",
    )
    assert run_gate(spec.phase("one").gates[-1], _ctx(clock, tmp_path)).passed
    assert set(json.loads(out.read_text())) == RUN_TIME_VARIABLES
