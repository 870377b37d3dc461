"""What validate can know without credentials or network: the task-definition template, Dockerfiles, paths
outside the repository and the Fargate cpu/memory table, each mistake with the file and line to fix."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from orchestrator.config import yamlio
from orchestrator.config.model import Phase, ServiceSpec
from orchestrator.config.names import ecs_name_problem
from orchestrator.errors import ConfigError, ConfigErrors

OPT_IN = "allow_outside_repo: true"

# The cpu/memory pairs Fargate accepts (MiB), from the ECS task-definition reference.
FARGATE_MEMORY: dict[int, tuple[int, ...]] = {
    256: (512, 1024, 2048),
    512: tuple(range(1024, 4096 + 1, 1024)),
    1024: tuple(range(2048, 8192 + 1, 1024)),
    2048: tuple(range(4096, 16384 + 1, 1024)),
    4096: tuple(range(8192, 30720 + 1, 1024)),
    8192: tuple(range(16384, 61440 + 1, 4096)),
    16384: tuple(range(32768, 122880 + 1, 8192)),
}
_UNIT = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*(vcpu|gb|mb|mib|gib)?\s*$", re.IGNORECASE | re.ASCII)


def fargate_problem(cpu: int, memory: int) -> str | None:
    """Why Fargate refuses this cpu/memory pair (None if it runs it)."""
    if cpu not in FARGATE_MEMORY:
        return f"Fargate has no cpu size {cpu} (one of {', '.join(map(str, FARGATE_MEMORY))})"
    allowed = FARGATE_MEMORY[cpu]
    if memory in allowed:
        return None
    listed = (
        ", ".join(map(str, allowed))
        if len(allowed) <= 4
        else f"{allowed[0]} to {allowed[-1]} in steps of {allowed[1] - allowed[0]}"
    )
    return f"Fargate does not run cpu {cpu} with memory {memory}: with cpu {cpu}, memory is {listed} (MiB)"


def _units(value: Any, per_unit: int) -> int | None:
    """'256', 256, '1 vCPU', '2 GB' -> CPU units / MiB (None if unreadable)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    m = _UNIT.match(str(value))
    if not m:
        return None
    number = float(m.group(1))
    return int(number * per_unit) if m.group(2) and m.group(2).lower() in ("vcpu", "gb", "gib") else int(number)


def check_offline(path: Path, raw: dict[str, Any], phases: Sequence[Phase]) -> list[ConfigError]:
    """Offline checks on a parsed pipeline (pipeline.yaml at `path`, its checked data `raw`, the loaded phases)."""
    return _Checker(path, raw).run(phases)


class _Checker:
    """One pass over the template, the build contexts and the paths, collecting errors."""

    def __init__(self, path: Path, raw: dict[str, Any]) -> None:
        self.path = path
        self.root = path.parent
        self.raw = raw
        self.service = raw.get("service") or {}
        self.allow_outside = bool(raw.get("allow_outside_repo"))
        self.errors: list[ConfigError] = []
        self._nodes: dict[Path, yaml.Node | None] = {}

    def run(self, phases: Sequence[Phase]) -> list[ConfigError]:
        try:
            template = self._template()
        except OSError as exc:  # a path the OS refuses to even look at (too long, a loop of symlinks)
            self.add(
                self.path, self._line(self.path, "service", "task_definition"), "service.task_definition", str(exc)
            )
            template = None
        fargate = (self.service.get("launch_type") or ServiceSpec.launch_type) == "FARGATE"
        for phase in phases:
            try:
                self._image(phase)
            except OSError as exc:
                if phase.path is not None:
                    self.add(
                        phase.path, self._line(phase.path, "image"), "image", f"cannot check the build context: {exc}"
                    )
            if fargate:
                self._phase_resources(phase, template)
        return self.errors

    # ------------------------------------------------------------------ lines

    def _node(self, file: Path) -> yaml.Node | None:
        if file not in self._nodes:
            try:
                self._nodes[file] = yamlio.load(file, self.root)
            except ConfigErrors:
                self._nodes[file] = None
        return self._nodes[file]

    def _line(self, file: Path, *keys: str) -> int | None:
        node = self._node(file)
        found = yamlio.walk(node, *keys) if node is not None else None
        if found is None and node is not None and len(keys) > 1:
            found = yamlio.walk(node, *keys[:-1])
        return yamlio.line_of(found)

    def add(self, file: Path, line: int | None, key: str | None, message: str) -> None:
        """Record one mistake."""
        self.errors.append(ConfigError(str(file), line, yamlio.neutralise(message), key=key))

    # ------------------------------------------------------------------ paths

    def _outside(self, target: Path, file: Path, keys: tuple[str, ...], what: str) -> bool:
        if self.allow_outside or yamlio.inside(target, self.root):
            return False
        self.add(
            file,
            self._line(file, *keys),
            ".".join(keys),
            f"{what} {target} is outside the repository ({self.root}); "
            f"snail reads only files in it unless pipeline.yaml says `{OPT_IN}`",
        )
        return True

    def _image(self, phase: Phase) -> None:
        ctx = phase.image.context
        if ctx is None or phase.path is None:
            return
        if self._outside(ctx, phase.path, ("image", "context"), "build context"):
            return
        dockerfile = Path(phase.image.dockerfile) if phase.image.dockerfile else Path("Dockerfile")
        full = dockerfile if dockerfile.is_absolute() else ctx / dockerfile
        # the default Dockerfile too: a symlink in the context that leads out of the repository is read by the build
        keys = ("image", "dockerfile") if phase.image.dockerfile else ("image", "context")
        if self._outside(full, phase.path, keys, "Dockerfile"):
            return
        if not full.is_file():
            keys = ("image", "dockerfile") if phase.image.dockerfile else ("image", "context")
            hint = "" if phase.image.dockerfile else " (name another file with image.dockerfile)"
            self.add(
                phase.path,
                self._line(phase.path, *keys),
                ".".join(keys),
                f"no Dockerfile at {_shown(full, self.root)}{hint}",
            )

    # ------------------------------------------------------------------ template

    def _template(self) -> dict[str, Any] | None:
        """The task-definition template as data (None when absent or broken; broken is reported)."""
        tdef = self.service.get("task_definition")
        if not tdef:
            return None
        file = Path(tdef) if Path(tdef).is_absolute() else self.root / tdef
        if self._outside(file, self.path, ("service", "task_definition"), "task definition template"):
            return None
        if not file.exists():
            return None  # the loader says so already
        try:
            text = yamlio.read_text(file, None if self.allow_outside else self.root)
        except ConfigErrors as exc:
            self.errors.extend(exc.errors)
            return None
        try:
            data = json.loads(text, parse_constant=_no_constant)
        except _Constant as exc:  # NaN / Infinity: Python's json reads them, ECS's JSON parser refuses them
            word = exc.args[0]
            at = _json_line(text, None, rf"(?<![\w\"]){re.escape(word)}(?![\w\"])")
            self.add(file, at, None, f"{word} is not JSON (write a number)")
            return None
        except json.JSONDecodeError as exc:
            self.add(file, exc.lineno, None, f"invalid JSON at column {exc.colno}: {exc.msg}")
            return None
        except RecursionError:
            self.add(file, None, None, "invalid JSON: nested too deeply")
            return None
        if not isinstance(data, dict):
            self.add(file, 1, None, "a task definition is a JSON object ({...})")
            return None
        defs = data.get("containerDefinitions")
        line = _json_line(text, "containerDefinitions")
        if not isinstance(defs, list) or not all(isinstance(d, dict) for d in defs):
            self.add(file, line or 1, "containerDefinitions", "expected a list of container definitions")
            return data
        for i, d in enumerate(defs):
            name = d.get("name") if isinstance(d.get("name"), str) else ""
            problem = ecs_name_problem(name, "container")
            if problem:
                at = _json_line(text, None, rf'"name"\s*:\s*{re.escape(json.dumps(name))}') or line
                self.add(file, at, f"containerDefinitions[{i}].name", problem)
        family = data.get("family")
        if family is not None:
            problem = ecs_name_problem(family if isinstance(family, str) else "", "task definition family")
            if problem:
                self.add(file, _json_line(text, "family") or 1, "family", problem)
        names = [str(d.get("name")) for d in defs]
        container = self.service.get("container")
        if container and container not in names:
            where = self._line(self.path, "service", "container")
            self.add(
                file,
                line,
                "containerDefinitions",
                f"no container named {container!r} (service.container, {self.path.name}:{where}); "
                f"the template has {', '.join(repr(n) for n in names) or 'none'}",
            )
        if (self.service.get("launch_type") or ServiceSpec.launch_type) == "FARGATE":
            cpu, memory = _units(data.get("cpu"), 1024), _units(data.get("memory"), 1024)
            if cpu is not None and memory is not None:
                problem = fargate_problem(cpu, memory)
                if problem:
                    self.add(file, _json_line(text, "cpu") or _json_line(text, "memory"), "cpu", problem)
        return data

    def _phase_resources(self, phase: Phase, template: dict[str, Any] | None) -> None:
        if phase.path is None or (phase.task.cpu is None and phase.task.memory is None):
            return
        base = template or {}
        cpu = phase.task.cpu if phase.task.cpu is not None else _units(base.get("cpu"), 1024)
        memory = phase.task.memory if phase.task.memory is not None else _units(base.get("memory"), 1024)
        if cpu is None or memory is None:
            return
        problem = fargate_problem(cpu, memory)
        if problem:
            key = "cpu" if phase.task.cpu is not None else "memory"
            self.add(phase.path, self._line(phase.path, "task", key), f"task.{key}", problem)


def _json_line(text: str, key: str | None, pattern: str = "") -> int | None:
    """The line of the first `"key":` (or match of `pattern`) in a JSON text (json keeps no positions)."""
    m = re.search(rf'"{re.escape(key)}"\s*:' if key is not None else pattern, text)
    return text.count("\n", 0, m.start()) + 1 if m else None


class _Constant(ValueError):
    """NaN, Infinity or -Infinity in a JSON text."""


def _no_constant(word: str) -> Any:
    raise _Constant(word)


def _shown(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)
