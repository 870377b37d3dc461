"""A config section is its dataclass: the fields carry their checkers, the class states the defaults, one builder."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import yaml

from orchestrator.config import load_pipeline, model
from orchestrator.config import schema as s
from orchestrator.config.section import build, checker, key


@dataclass(frozen=True)
class _Toy:
    """A section as a new one would be written: each key one line."""

    name: str = key(s.string)
    lease: float = key(s.lease, 300.0)
    tags: tuple[str, ...] = key(s.list_of(s.string), ())
    home: Path | None = key(s.file_path, None, relative=True)


def _check(text: str) -> tuple[object, list[str]]:
    """`text` checked as a _Toy section of toy.yaml: the checked data and the error lines."""
    errors = s.Errors("toy.yaml")
    raw = checker(_Toy)(yaml.compose(text), "toy", errors)
    return raw, [str(e) for e in errors.items]


def test_a_section_is_checked_from_its_fields_with_file_and_line() -> None:
    """The checker derived from the fields names the file, line and key of each mistake, and knows the keys."""
    _, problems = _check("name: x\nlease: 2s\nhoem: /x\n")
    assert problems == [
        "toy.yaml:2: toy.lease: '2s' is too short: at least 10s (a shorter lease expires between heartbeats of a live run)",
        "toy.yaml:3: toy.hoem: unknown key (did you mean 'home'?); known keys: home, lease, name, tags",
    ]
    _, problems = _check("lease: 1m\n")
    assert problems == ["toy.yaml:1: toy.name: is required"]  # no default on the class: the key is required


def test_a_key_left_out_keeps_the_class_default_and_lists_become_tuples() -> None:
    """build() takes each given key from the checked data and leaves every other field at the class's default."""
    raw, problems = _check("name: x\ntags: [a, b]\nhome: sub\n")
    assert problems == [] and isinstance(raw, dict)
    toy = build(_Toy, raw, Path("/repo"))
    assert toy == _Toy(name="x", lease=300.0, tags=("a", "b"), home=Path("/repo/sub"))
    assert build(_Toy, {"name": "y"}) == _Toy(name="y")


def test_every_field_of_a_pipeline_section_carries_its_checker() -> None:
    """Each section the YAML writes is read through its fields alone (no hand list of its keys elsewhere)."""
    sections = [
        model.ProbeSpec,
        model.ImageSpec,
        model.TaskSpec,
        model.Defaults,
        model.NetworkSpec,
        model.LoadBalancerSpec,
        model.ServiceSpec,
        model.RegistrySpec,
        model.StateSpec,
        model.Rollback,
    ]
    for cls in sections:
        assert all("check" in f.metadata for f in dataclasses.fields(cls)), cls
        assert set(checker(cls).fields) == {f.name for f in dataclasses.fields(cls)}, cls
    assert {f.name for f in dataclasses.fields(model.Phase) if "check" not in f.metadata} == {"path"}


def test_defaults_are_the_classes_own(make_pipeline) -> None:
    """A pipeline that leaves out every optional key loads with exactly the defaults its classes state."""
    p = load_pipeline(make_pipeline())
    assert p.state == model.StateSpec()
    assert p.on_interrupt == model.Rollback().on_interrupt
    assert p.service.launch_type == "FARGATE" and p.service.desired_count == 1 and p.service.circuit_breaker


def test_fleet_sections_are_read_through_their_fields_too() -> None:
    """fleet.yaml's waves, windows, freezes, on_failure and state are sections built the same way."""
    from orchestrator.fleet import model as fleet

    for cls in (fleet.Wave, fleet.OnFailure, fleet.Window, fleet.Freeze, fleet.FleetState):
        assert all("check" in f.metadata for f in dataclasses.fields(cls)), cls
    assert set(checker(fleet.Window).fields) == {"days", "from", "to", "zone"}  # the YAML's names
    assert {f.name for f in dataclasses.fields(fleet.Target) if "check" not in f.metadata} == {"name", "pipeline"}


def test_gate_specs_are_read_through_their_fields() -> None:
    """Each gate type's keys are its class's fields (plus `type`, and an http gate's `expect:`), nowhere else."""
    from orchestrator.config import gates

    unread = {"source", "from_service", "baseline_target_group_arn"}
    unread |= {"expect_status", "expect_json", "body_contains", "max_latency"}  # written under an http gate's `expect:`
    for cls in gates.GATE_CLASSES.values():
        assert {f.name for f in dataclasses.fields(cls) if "check" not in f.metadata} <= unread, cls
    assert all("check" in f.metadata for f in dataclasses.fields(gates.Retries))


def test_strategy_and_notify_are_read_through_their_fields() -> None:
    """A strategy's settings and a notify target's options are their classes' fields (`type` for StrategySpec.kind)."""
    from orchestrator.config.notify import NotifySpec
    from orchestrator.config.strategy import StrategySpec

    assert set(checker(StrategySpec).fields) == {"type", "percent", "step_bake", "bake", "hook_timeout"}
    assert {f.name for f in dataclasses.fields(NotifySpec) if "check" not in f.metadata} == {"kind", "target", "source"}
