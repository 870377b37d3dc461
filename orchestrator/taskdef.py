"""Task definitions: compose a phase's revision from a base, compare revisions, diff them readably."""

from __future__ import annotations

import copy
import difflib
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from orchestrator.aws.ecs import READ_ONLY_TASKDEF_FIELDS
from orchestrator.config.model import Phase, ServiceSpec
from orchestrator.errors import ConfigError
from orchestrator.redact import mask_taskdef

TAG_PHASE = "snail:phase"
TAG_SPEC = "snail:spec-hash"
TAG_DIGEST = "snail:image-digest"
TAG_RUN = "snail:run"
# Without a template: the revision phases were composed over (the one the service ran before snail), recorded on
# every revision snail registers, so the next plan composes over it again instead of over whatever is live.
TAG_BASE = "snail:base"


def load_template(path: Path) -> dict[str, Any]:
    """Read the base task definition JSON; errors name the file and line."""
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ConfigError(str(path), exc.lineno, f"invalid JSON: {exc.msg}") from None
    if not isinstance(data, dict) or "containerDefinitions" not in data:
        raise ConfigError(str(path), 1, "a task definition needs `containerDefinitions`")
    return data


def strip_read_only(definition: dict[str, Any]) -> dict[str, Any]:
    """A described revision without the fields register_task_definition refuses."""
    return {k: v for k, v in definition.items() if k not in READ_ONLY_TASKDEF_FIELDS}


# What a container runs besides its image's own CMD/ENTRYPOINT.
RUN_OVERRIDES = ("command", "entryPoint")


def compose(
    base: dict[str, Any], service: ServiceSpec, phase: Phase, image: str, *, from_template: bool = True
) -> dict[str, Any]:
    """The revision a phase registers: base + image + the phase's task changes.

    A phase that builds its image runs that image as built: a `command`/`entryPoint` the base inherited from the
    service's current revision (not from the template) belonged to the previous image and is dropped, unless the
    phase sets its own `task.command`."""
    td = copy.deepcopy(strip_read_only(base))
    td.setdefault("family", service.name)
    names = [c.get("name") for c in td.get("containerDefinitions", [])]
    if service.container not in names:
        raise ConfigError(
            str(service.task_definition or "service task definition"),
            None,
            f"has no container named {service.container!r} (containers: {', '.join(map(str, names))})",
            key="service.container",
        )
    for cd in td["containerDefinitions"]:
        if cd.get("name") != service.container:
            continue
        cd["image"] = image
        env = {e["name"]: e.get("value", "") for e in cd.get("environment", [])}
        env.update(phase.task.environment)
        env.setdefault("SNAIL_PHASE", phase.name)
        env["SNAIL_PHASE"] = phase.name
        cd["environment"] = [{"name": k, "value": v} for k, v in sorted(env.items())]
        if phase.task.secrets:
            sec = {s["name"]: s["valueFrom"] for s in cd.get("secrets", [])}
            sec.update(phase.task.secrets)
            cd["secrets"] = [{"name": k, "valueFrom": v} for k, v in sorted(sec.items())]
        if phase.image.context is not None and not from_template:
            for key in RUN_OVERRIDES:
                cd.pop(key, None)
        if phase.task.command:
            cd["command"] = list(phase.task.command)
        if not cd.get("portMappings"):
            cd["portMappings"] = [{"containerPort": service.port, "protocol": "tcp"}]
    if phase.task.cpu:
        td["cpu"] = str(phase.task.cpu)
    if phase.task.memory:
        td["memory"] = str(phase.task.memory)
    return td


def _canon(value: Any) -> Any:
    """Normalise a definition for comparison: drop empties, sort name/value lists."""
    if isinstance(value, dict):
        return {k: _canon(v) for k, v in sorted(value.items()) if v not in (None, [], {}, "")}
    if isinstance(value, list):
        items = [_canon(v) for v in value]
        if items and all(isinstance(i, dict) and "name" in i for i in items):
            items.sort(key=lambda i: str(i["name"]))
        return items
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return value


def spec_hash(definition: dict[str, Any]) -> str:
    """A stable hash of what a revision would run, to reuse identical revisions instead of re-registering."""
    canon = _canon(strip_read_only(definition))
    return hashlib.sha256(json.dumps(canon, sort_keys=True).encode()).hexdigest()[:16]


def runs_as(live: dict[str, Any], desired: dict[str, Any], name: str, same_image: Callable[[str, str], bool]) -> bool:
    """True when `live`, a revision snail did not register, already runs what `desired` would: the same
    definition but for the SNAIL_PHASE variable snail adds to container `name`, and the same image there
    (`same_image(live_ref, desired_ref)`: a tag and the digest it names are the same image)."""

    def comparable(definition: dict[str, Any]) -> tuple[dict[str, Any], str]:
        td = copy.deepcopy(strip_read_only(definition))
        image = ""
        cds = td.get("containerDefinitions", [])
        for cd in cds:
            if cd.get("name") == name:
                image = str(cd.pop("image", ""))
                cd["environment"] = [e for e in cd.get("environment", []) if e.get("name") != "SNAIL_PHASE"]
        # ECS fills in `cpu: 0` on every container it describes (as in diff()): not a difference
        td["containerDefinitions"] = [{k: v for k, v in cd.items() if not (k == "cpu" and str(v) == "0")} for cd in cds]
        return _canon(td), image

    (a, live_image), (b, desired_image) = comparable(live), comparable(desired)
    return a == b and bool(live_image) and (live_image == desired_image or same_image(live_image, desired_image))


def container(definition: dict[str, Any], name: str) -> dict[str, Any] | None:
    """The named container definition."""
    return next((c for c in definition.get("containerDefinitions", []) if c.get("name") == name), None)


def diff(current: dict[str, Any] | None, desired: dict[str, Any], label_from: str, label_to: str) -> str:
    """A unified diff of two revisions (secrets masked, read-only fields dropped)."""

    def lines(td: dict[str, Any] | None) -> list[str]:
        if td is None:
            return []
        td = mask_taskdef(strip_read_only(td))
        # ECS fills in `cpu: 0` on every container it describes; a template rarely says it. Not a change.
        td["containerDefinitions"] = [
            {k: v for k, v in cd.items() if not (k == "cpu" and str(v) == "0")}
            for cd in td.get("containerDefinitions", [])
        ]
        return json.dumps(_canon(td), indent=2, sort_keys=True).splitlines(keepends=True)

    return "".join(difflib.unified_diff(lines(current), lines(desired), fromfile=label_from, tofile=label_to))
