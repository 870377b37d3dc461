"""Config loading: every mistake names its file, line and key; good files load into frozen dataclasses."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from orchestrator.config import load_pipeline
from orchestrator.errors import ConfigErrors
from tests.conftest import PIPELINE


def errors_of(path: Path) -> list[str]:
    """Load and return the error lines (fails the test if loading succeeds)."""
    with pytest.raises(ConfigErrors) as exc:
        load_pipeline(path)
    return [str(e) for e in exc.value.errors]


def test_reference_pipeline_loads() -> None:
    """The repository's own pipeline.yaml is valid and lists the field log's four phases."""
    p = load_pipeline(Path(__file__).parents[2] / "pipeline.yaml")
    assert p.phase_names() == ["health-only", "hybrid-ml", "optimized", "enhanced"]
    hybrid = p.phase("hybrid-ml")
    assert [g.type for g in hybrid.gates] == ["ecs-rollout", "http", "http"]
    assert hybrid.gates[-1].expect_json == {"status": ("ready", "degraded")}
    assert p.service.port == 5000


def test_loaded_pipeline_is_frozen(make_pipeline) -> None:
    """The dataclasses cannot be changed after loading."""
    p = load_pipeline(make_pipeline())
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.service.port = 8080  # type: ignore[misc]


def test_defaults_merged_into_phases(make_pipeline) -> None:
    """Default gates come first in every phase; a phase can opt out with inherit_gates: false."""
    path = make_pipeline(
        phases={
            "one": 'name: one\nimage: {ref: "r@sha256:' + "1" * 64 + '"}\ngates:\n  - {type: command, run: "true"}\n',
            "two": 'name: two\nimage: {ref: "r@sha256:'
            + "2" * 64
            + '"}\ninherit_gates: false\ngates:\n  - {type: command, run: "true"}\n',
        }
    )
    p = load_pipeline(path)
    assert [g.type for g in p.phase("one").gates] == ["http", "command"]
    assert [g.type for g in p.phase("two").gates] == ["command"]


@pytest.mark.parametrize(
    "old, new, line, expected",
    [
        ("  port: 5000", "  port: 70000", 7, "service.port: 70000 is out of range (1..65535)"),
        ("  port: 5000", "  port: five", 7, "service.port: expected a port number, got 'five'"),
        ("  port: 5000", "  prot: 5000", 7, "service.prot: unknown key (did you mean 'port'?)"),
        ("  bake: 0s", "  bake: 3x", 13, "defaults.bake: bad duration '3x'"),
        ("version: 1", "version: 2", 1, "version: 2 is out of range (1..1)"),
        ("  container: api\n", "", 3, "service.container: is required"),
        (
            "    - {type: http, path: /health, expect: {status: 200}}",
            "    - {type: htp, path: /health}",
            12,
            "defaults.gates[0].type: 'htp' is not one of",
        ),
        (
            "    - {type: http, path: /health, expect: {status: 200}}",
            "    - {type: http, expect: {status: 200}}",
            12,
            "an http gate needs exactly one of `path` or `url`",
        ),
        (
            "    - {type: http, path: /health, expect: {status: 200}}",
            "    - {type: http, path: /health, expect: {status: 999}}",
            12,
            "999 is not an HTTP status code",
        ),
        (
            "    - {type: http, path: /health, expect: {status: 200}}",
            "    - {type: http, path: /health, retries: {attempts: 0}}",
            12,
            "attempts: 0 is out of range",
        ),
        ("phases: [one, two]", "phases: [one, one]", 14, "phase 'one' is listed twice"),
        ("phases: [one, two]", "phases: [one, three]", 14, "phase file phases/three.yaml does not exist"),
        ("phases: [one, two]", "phases: []", 14, "phases: needs at least 1 item"),
        ("  url: 127.0.0.1:5055/shine-api-gateway", "  url: x\n  ecr: y", 9, "give exactly one of `ecr` or `url`"),
    ],
)
def test_pipeline_mistakes_name_file_line_key(make_pipeline, old: str, new: str, line: int, expected: str) -> None:
    """Each bad pipeline.yaml gives a one-line error with file:line and the key."""
    assert old in PIPELINE
    path = make_pipeline(PIPELINE.replace(old, new))
    errs = errors_of(path)
    assert any(f"pipeline.yaml:{line}:" in e and expected in e for e in errs), errs


def test_yaml_syntax_error_names_line(make_pipeline) -> None:
    """A YAML syntax error is reported with its line, not a traceback."""
    path = make_pipeline(PIPELINE.replace("  port: 5000", "  port: [5000"))
    errs = errors_of(path)
    assert len(errs) == 1 and "pipeline.yaml:" in errs[0] and "YAML syntax error" in errs[0]


def test_missing_pipeline_file(tmp_path: Path) -> None:
    """A pipeline file that does not exist is a clear error."""
    errs = errors_of(tmp_path / "nope.yaml")
    assert errs == [f"{tmp_path / 'nope.yaml'}: file not found"]


@pytest.mark.parametrize(
    "text, line, expected",
    [
        ('name: one\nimage: {ref: "x"}\ntask: {cpu: lots}\n', 3, "task.cpu: expected a whole number, got 'lots'"),
        ('name: one\nimage: {ref: "x", context: images/x}\n', 2, "give exactly one of `context` or `ref`"),
        ('name: one\nimage: {ref: "x"}\napproval: maybe\n', 3, "approval: 'maybe' is not one of: auto, manual"),
        ('name: uno\nimage: {ref: "x"}\n', 1, "name: is 'uno' but the file is one.yaml"),
        ('name: one\nimage: {ref: "x"}\ngates:\n  - {type: command}\n', 4, "gates[0].run: is required"),
        ('name: one\nimage: {ref: "x"}\ngates:\n  - {type: alarm, alarms: []}\n', 4, "needs at least 1 item"),
        ("name: one\nimage: {context: images/none}\n", 1, "build context images/none is not a folder"),
        ('name: one\nimage: {ref: "x"}\ntask: {environment: {A: [1]}}\n', 3, "task.environment.A: expected a string"),
        ('name: one\nimage: {ref: "x"}\nbake: soon\n', 3, "bake: bad duration 'soon'"),
        ('name: one\nimage: {ref: "x"}\nimage: {ref: "y"}\n', 3, "image: duplicate key"),
    ],
)
def test_phase_mistakes_name_file_line_key(make_pipeline, text: str, line: int, expected: str) -> None:
    """Each bad phase file gives an error naming that file, the line and the key."""
    path = make_pipeline(phases={"one": text, "two": 'name: two\nimage: {ref: "y"}\n'})
    errs = errors_of(path)
    assert any(f"one.yaml:{line}:" in e and expected in e for e in errs), errs


def test_all_mistakes_reported_at_once(make_pipeline) -> None:
    """validate reports every mistake in one go, across files."""
    path = make_pipeline(
        PIPELINE.replace("  port: 5000", "  port: 0").replace("  bake: 0s", "  bake: 3x"),
        phases={"one": 'name: one\nimage: {ref: "x"}\ntask: {cpu: 1}\n', "two": "name: two\n"},
    )
    errs = errors_of(path)
    assert len(errs) >= 3, errs


def test_environment_interpolation(make_pipeline, monkeypatch) -> None:
    """${VAR:-default} in strings is expanded from the environment."""
    monkeypatch.setenv("SNAIL_TEST_CLUSTER", "blue")
    path = make_pipeline(
        PIPELINE.replace("cluster: shine", "cluster: ${SNAIL_TEST_CLUSTER:-shine}").replace(
            "region: us-east-1", "region: ${SNAIL_TEST_NOPE:-eu-west-1}"
        )
    )
    p = load_pipeline(path)
    assert (p.service.cluster, p.service.region) == ("blue", "eu-west-1")


def test_durations() -> None:
    """Durations accept ms, s, m, h and plain numbers; NaN, inf, over a week, non-ASCII digits are refused."""
    from orchestrator.config.schema import parse_duration

    assert [parse_duration(x) for x in ("250ms", "3s", "10m", "1h", 5, "1.5s")] == [0.25, 3, 600, 3600, 5, 1.5]
    for bad in ("3x", "", "-1s", True, -2, float("nan"), float("inf"), 10**30, "9999999h", "٥s", "1e3s"):
        with pytest.raises(ValueError):
            parse_duration(bad)
