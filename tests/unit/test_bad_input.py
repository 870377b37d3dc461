"""validate survives anything (issue 12 §4) and catches offline mistakes (issue 14): each hostile or broken
input is one `file:line: key: message` error, never a traceback, a hang or a silent accept."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.config import load_pipeline
from orchestrator.config.yamlio import MAX_BYTES
from orchestrator.errors import ConfigError, ConfigErrors
from tests.conftest import PHASE, PIPELINE
from tests.harness.cli import snail

REF = "127.0.0.1:5055/shine-api-gateway@sha256:" + "a" * 64
GOOD_PHASE = f'name: one\nimage: {{ref: "{REF}"}}\n'


@dataclass
class Bad:
    """One bad input: what to write, and the error it must give (file name, line, key, message part)."""

    id: str
    file: str  # "pipeline.yaml" or "one.yaml" (phases/one.yaml) or another file name the error names
    line: int | None
    key: str | None
    says: str
    pipeline: str | bytes = PIPELINE
    phase: str | bytes = GOOD_PHASE
    setup: Callable[[Path], None] | None = None
    env: dict[str, str] = field(default_factory=dict)


def _p(old: str, new: str) -> str:
    """The test pipeline with one line changed."""
    assert old in PIPELINE, old
    return PIPELINE.replace(old, new)


def _phase(extra: str) -> str:
    """Phase `one` with extra YAML appended."""
    return GOOD_PHASE + textwrap.dedent(extra)


def _nest(depth: int) -> str:
    return "x: " + "[" * depth + "]" * depth + "\n"


LAUGHS = "".join(
    f"{a}: &{a} [" + ", ".join([f"*{b}"] * 10 if b else ["lol"] * 10) + "]\n"
    for a, b in zip("abcdefghi", [None, *"abcdefgh"], strict=True)
)


def _context(tmp: Path, dockerfile: bool = True) -> None:
    (tmp / "images" / "one").mkdir(parents=True, exist_ok=True)
    if dockerfile:
        (tmp / "images" / "one" / "Dockerfile").write_text("FROM scratch\n")


def _outside_dir(tmp: Path) -> Path:
    out = tmp.parent / f"{tmp.name}-outside"
    out.mkdir(exist_ok=True)
    (out / "Dockerfile").write_text("FROM scratch\n")
    (out / "taskdef.json").write_text('{"containerDefinitions": [{"name": "api"}]}')
    return out


def _symlink_phase_out(tmp: Path) -> None:
    out = _outside_dir(tmp)
    (out / "one.yaml").write_text(GOOD_PHASE)
    target = tmp / "phases" / "one.yaml"
    target.unlink()
    target.symlink_to(out / "one.yaml")


def _phase_is_folder(tmp: Path) -> None:
    target = tmp / "phases" / "one.yaml"
    target.unlink()
    target.mkdir()


def _dockerfile_symlinked_out(tmp: Path) -> None:
    """A build context inside the repository whose Dockerfile is a symlink to one outside it."""
    out = _outside_dir(tmp)
    (tmp / "images" / "one").mkdir(parents=True, exist_ok=True)
    (tmp / "images" / "one" / "Dockerfile").symlink_to(out / "Dockerfile")


def _template(text: str) -> Callable[[Path], None]:
    """Set-up writing taskdef.json next to pipeline.yaml (the pipeline must name it: WITH_TEMPLATE)."""

    def setup(tmp: Path) -> None:
        (tmp / "taskdef.json").write_text(text)

    return setup


WITH_TEMPLATE = _p("  port: 5000\n", "  port: 5000\n  task_definition: taskdef.json\n")
DIGEST_REF = "127.0.0.1:5055/shine-api-gateway@sha256:"


def _ref(ref: str) -> str:
    """Phase `one` with this image reference."""
    return f'name: one\nimage: {{ref: "{ref}"}}\n'


def _registry(line: str) -> str:
    """The test pipeline with another registry line."""
    return _p("  url: 127.0.0.1:5055/shine-api-gateway", line)


CORPUS: list[Bad] = [
    # ---- bytes and encodings
    Bad(
        "latin-1",
        "pipeline.yaml",
        3,
        None,
        "not valid UTF-8 (byte 0xe9)",
        pipeline=_p("shine\n", "shin\xe9\n").encode("latin-1"),
    ),
    Bad("utf-16-bom", "pipeline.yaml", 1, None, "UTF-16-encoded", pipeline=PIPELINE.encode("utf-16")),
    Bad("utf-16-no-bom", "pipeline.yaml", 1, None, "looks UTF-16-encoded", pipeline=PIPELINE.encode("utf-16-le")),
    Bad("utf-32", "pipeline.yaml", 1, None, "UTF-32-encoded", pipeline=PIPELINE.encode("utf-32")),
    Bad("binary", "one.yaml", 1, None, "NUL character", phase=b"\x7fELF\x02\x01\x01\x00\x00\x00\x00\xff\xfe"),
    Bad("raw-NUL", "one.yaml", 3, None, "NUL", phase=GOOD_PHASE.encode() + b"bake: 1s\x00\n"),
    Bad("raw-ESC", "one.yaml", 3, None, "U+001B (ESC)", phase=GOOD_PHASE + "bake: \x1b[2J1s\n"),
    Bad(
        "escaped-ESC",
        "one.yaml",
        3,
        "task.environment.A",
        "U+001B (ESC)",
        phase=_phase('task: {environment: {A: "\\e[31mred"}}\n'),
    ),
    Bad(
        "escaped-NUL",
        "one.yaml",
        3,
        "task.environment.A",
        "U+0000 (NUL)",
        phase=_phase('task: {environment: {A: "a\\0b"}}\n'),
    ),
    Bad(
        "C1-control",
        "one.yaml",
        3,
        "task.environment.A",
        "U+009B",
        phase=_phase('task: {environment: {A: "\\x9b31m"}}\n'),
    ),
    Bad("bidi-override", "one.yaml", 3, None, "RIGHT-TO-LEFT OVERRIDE", phase=GOOD_PHASE + "bake: 1s # \u202e\n"),
    Bad(
        "key-with-line-break",
        "one.yaml",
        3,
        "task.env\\nironment",
        "unknown key",
        phase=_phase('task: {"env\\nironment": {A: x}}\n'),
    ),
    Bad(
        "context-name-too-long",
        "one.yaml",
        2,
        "image.context",
        "path too long",
        phase="name: one\nimage: {context: " + "a" * 300 + "}\n",
    ),
    # ---- tags
    Bad(
        "tag-Ref",
        "pipeline.yaml",
        3,
        "service.cluster",
        "unknown tag !Ref",
        pipeline=_p("cluster: shine", "cluster: !Ref Cluster"),
    ),
    Bad(
        "tag-python",
        "pipeline.yaml",
        3,
        "service.cluster",
        "unknown tag !!python/object/apply:os.system",
        pipeline=_p("cluster: shine", "cluster: !!python/object/apply:os.system [echo pwned]"),
    ),
    Bad(
        "tag-python-name",
        "one.yaml",
        3,
        "bake",
        "unknown tag !!python/name:os.system",
        phase=_phase("bake: !!python/name:os.system ''\n"),
    ),
    Bad(
        "tag-binary",
        "one.yaml",
        3,
        "task.environment.A",
        "unknown tag !!binary",
        phase=_phase("task: {environment: {A: !!binary aGk=}}\n"),
    ),
    Bad("tag-set", "one.yaml", 3, "gates", "unknown tag !!set", phase=_phase("gates: !!set {a, b}\n")),
    # ---- structure bombs
    Bad("nesting-600-flow", "one.yaml", 3, None, "nested deeper than 64 levels", phase=GOOD_PHASE + _nest(600)),
    Bad("nesting-100k-flow", "one.yaml", 3, None, "nested deeper than 64 levels", phase=GOOD_PHASE + _nest(100_000)),
    Bad(
        "nesting-600-block",
        "one.yaml",
        None,
        None,
        "nested deeper than 64 levels",
        phase=GOOD_PHASE + "x:\n" + "".join("  " * i + "- \n" for i in range(1, 600)).replace("- \n", "-\n"),
    ),
    Bad("billion-laughs", "one.yaml", None, None, "counting what each alias expands to", phase=GOOD_PHASE + LAUGHS),
    Bad("alias-loop", "one.yaml", 3, "x[0]", "refers to its own parent", phase=GOOD_PHASE + "x: &a [*a]\n"),
    Bad("alias-undefined", "one.yaml", 3, "bake", "has no anchor", phase=GOOD_PHASE + "bake: *nowhere\n"),
    Bad("two-documents", "one.yaml", 3, None, "more than one YAML document", phase=GOOD_PHASE + "---\nname: two\n"),
    Bad("mapping-as-key", "one.yaml", 3, None, "a key must be a plain name", phase=GOOD_PHASE + "? {a: 1}\n: x\n"),
    Bad(
        "over-size-cap", "one.yaml", None, None, "the limit is 1 MiB", phase=GOOD_PHASE + "# " + "x" * MAX_BYTES + "\n"
    ),
    Bad(
        "40-MB-file",
        "pipeline.yaml",
        None,
        None,
        "the limit is 1 MiB",
        pipeline=PIPELINE + ("# " + "y" * 1000 + "\n") * 40_000,
    ),
    Bad(
        "5-MB-string",
        "one.yaml",
        None,
        None,
        "the limit is 1 MiB",
        phase=_phase(f'task: {{environment: {{A: "{"z" * 5_000_000}"}}}}\n'),
    ),
    Bad(
        "5-MB-string-from-env",
        "one.yaml",
        3,
        "task.environment.A",
        "longer than the limit",
        phase=_phase("task: {environment: {A: '${SNAIL_TEST_BIG}'}}\n"),
        env={"SNAIL_TEST_BIG": "q" * 5_000_000},
    ),
    Bad("empty-file", "one.yaml", None, None, "file is empty", phase=""),
    Bad("folder-as-phase-file", "one.yaml", None, None, "is a folder, not a regular file", setup=_phase_is_folder),
    Bad("symlink-out-of-repo", "one.yaml", None, None, "outside the repository", setup=_symlink_phase_out),
    # ---- names
    Bad(
        "phase-name-300",
        "pipeline.yaml",
        14,
        "phases[0]",
        "300 characters is too long",
        pipeline=_p("phases: [one, two]", f"phases: [{'a' * 300}, two]"),
    ),
    Bad(
        "phase-name-newline",
        "pipeline.yaml",
        14,
        "phases[0]",
        "bad phase name 'one\\n'",
        pipeline=_p("phases: [one, two]", 'phases: ["one\\n", two]'),
    ),
    Bad(
        "phase-name-unicode",
        "pipeline.yaml",
        14,
        "phases[0]",
        "bad phase name",
        pipeline=_p("phases: [one, two]", "phases: [ｏｎｅ, two]"),
    ),
    # ---- numbers and durations
    Bad(
        "port-superscript",
        "pipeline.yaml",
        7,
        "service.port",
        "expected a port number",
        pipeline=_p("port: 5000", 'port: "²"'),
    ),
    Bad(
        "port-arabic-digits",
        "pipeline.yaml",
        7,
        "service.port",
        "expected a port number",
        pipeline=_p("port: 5000", 'port: "٥٠٠٠"'),
    ),
    Bad(
        "port-huge",
        "pipeline.yaml",
        7,
        "service.port",
        "out of range",
        pipeline=_p("port: 5000", "port: 99999999999999999999999"),
    ),
    Bad("bake-nan", "pipeline.yaml", 13, "defaults.bake", "bad duration", pipeline=_p("bake: 0s", "bake: .nan")),
    Bad(
        "bake-inf", "pipeline.yaml", 13, "defaults.bake", "longer than the limit", pipeline=_p("bake: 0s", "bake: .inf")
    ),
    Bad(
        "bake-float-overflow",
        "pipeline.yaml",
        13,
        "defaults.bake",
        "longer than the limit",
        pipeline=_p("bake: 0s", "bake: 1.0e+400"),
    ),
    Bad(
        "bake-int-overflow",
        "pipeline.yaml",
        13,
        "defaults.bake",
        "longer than the limit",
        pipeline=_p("bake: 0s", "bake: 99999999999999999999999h"),
    ),
    Bad("bake-negative", "one.yaml", 3, "bake", "bad duration", phase=_phase("bake: -1\n")),
    Bad("bake-arabic-digits", "one.yaml", 3, "bake", "bad duration", phase=_phase("bake: ٥s\n")),
    Bad(
        "gate-timeout-nan",
        "one.yaml",
        4,
        "gates[0].timeout",
        "",
        phase=_phase("gates:\n  - {type: ecs-rollout, timeout: .nan}\n"),
    ),
    Bad(
        "retries-wait-overflow",
        "one.yaml",
        4,
        "gates[0].retries.wait",
        "",
        phase=_phase("gates:\n  - {type: ecs-rollout, retries: {wait: 1.0e+400}}\n"),
    ),
    Bad(
        "retries-backoff-inf",
        "one.yaml",
        4,
        "gates[0].retries.backoff",
        "",
        phase=_phase("gates:\n  - {type: ecs-rollout, retries: {backoff: .inf}}\n"),
    ),
    Bad(
        "lease-0",
        "pipeline.yaml",
        16,
        "state.lease",
        "too short: at least 10s",
        pipeline=PIPELINE + "state:\n  lease: 0\n",
    ),
    Bad(
        "lease-10ms",
        "pipeline.yaml",
        16,
        "state.lease",
        "too short: at least 10s",
        pipeline=PIPELINE + "state:\n  lease: 10ms\n",
    ),
    Bad(
        "probe-timeout-forever",
        "one.yaml",
        2,
        "image.probe.timeout",
        "bad duration 'forever'",
        phase="name: one\nimage: {context: images/one, probe: {timeout: forever}}\n",
        setup=_context,
    ),
    Bad(
        "probe-timeout-minus-1",
        "one.yaml",
        2,
        "image.probe.timeout",
        "bad duration",
        phase="name: one\nimage: {context: images/one, probe: {timeout: -1}}\n",
        setup=_context,
    ),
    Bad("cpu-float", "one.yaml", 3, "task.cpu", "expected a whole number", phase=_phase("task: {cpu: .inf}\n")),
    # ---- maps of names
    Bad(
        "duplicate-environment",
        "one.yaml",
        6,
        "task.environment.A",
        "duplicate name",
        phase=_phase("task:\n  environment:\n    A: x\n    A: y\n"),
    ),
    Bad(
        "duplicate-secrets",
        "one.yaml",
        6,
        "task.secrets.DB",
        "duplicate name",
        phase=_phase(
            "task:\n  secrets:\n    DB: arn:aws:ssm:us-east-1:1:parameter/a\n    DB: arn:aws:ssm:us-east-1:1:parameter/b\n"
        ),
    ),
    Bad(
        "duplicate-build-args",
        "pipeline.yaml",
        16,
        "defaults.build_args.X",
        "duplicate name",
        pipeline=_p("  bake: 0s\n", "  bake: 0s\n  build_args:\n    X: a\n    X: b\n"),
    ),
    Bad(
        "empty-env-name",
        "one.yaml",
        3,
        "task.environment.",
        "empty name",
        phase=_phase('task: {environment: {"": x}}\n'),
    ),
    Bad(
        "env-name-with-equals",
        "one.yaml",
        3,
        "task.environment.A=B",
        "no '=' or spaces",
        phase=_phase('task: {environment: {"A=B": x}}\n'),
    ),
    Bad(
        "empty-valueFrom",
        "one.yaml",
        3,
        "task.secrets.DB",
        "empty valueFrom",
        phase=_phase('task: {secrets: {DB: ""}}\n'),
    ),
    # ---- command gates (typed gate specs)
    Bad("run-mapping", "one.yaml", 4, "gates[0].run", "", phase=_phase("gates:\n  - {type: command, run: {sh: x}}\n")),
    Bad(
        "run-nested-list",
        "one.yaml",
        4,
        "gates[0].run",
        "",
        phase=_phase("gates:\n  - {type: command, run: [[sleep, '1']]}\n"),
    ),
    Bad(
        "run-int-item",
        "one.yaml",
        4,
        "gates[0].run",
        "",
        phase=_phase("gates:\n  - {type: command, run: [sleep, 1]}\n"),
    ),
    Bad(
        "run-NUL",
        "one.yaml",
        4,
        "gates[0].run",
        "NUL",
        phase=_phase('gates:\n  - {type: command, run: "true\\0rm -rf /"}\n'),
    ),
    Bad(
        "expect-status-empty",
        "one.yaml",
        4,
        "gates[0].expect.status",
        "",
        phase=_phase("gates:\n  - {type: http, path: /x, expect: {status: []}}\n"),
    ),
    # ---- URLs
    Bad(
        "endpoint-javascript",
        "pipeline.yaml",
        8,
        "service.endpoint",
        "expected an http:// or https:// URL",
        pipeline=_p("  port: 5000\n", "  port: 5000\n  endpoint: javascript:alert(1)\n"),
    ),
    Bad(
        "endpoint-file",
        "pipeline.yaml",
        8,
        "service.endpoint",
        "expected an http:// or https:// URL",
        pipeline=_p("  port: 5000\n", "  port: 5000\n  endpoint: file:///etc/passwd\n"),
    ),
    Bad(
        "gate-url-file",
        "one.yaml",
        4,
        "gates[0].url",
        "",
        phase=_phase("gates:\n  - {type: http, url: 'file:///etc/passwd'}\n"),
    ),
    Bad(
        "gate-url-javascript",
        "one.yaml",
        4,
        "gates[0].url",
        "",
        phase=_phase("gates:\n  - {type: http, url: 'javascript:alert(1)'}\n"),
    ),
    # ---- environment
    Bad(
        "undefined-var",
        "pipeline.yaml",
        3,
        "service.cluster",
        "${SNAIL_TEST_UNSET} is not set",
        pipeline=_p("cluster: shine", "cluster: ${SNAIL_TEST_UNSET}"),
    ),
    Bad(
        "undefined-var-in-port",
        "pipeline.yaml",
        7,
        "service.port",
        "${SNAIL_TEST_UNSET} is not set",
        pipeline=_p("port: 5000", 'port: "${SNAIL_TEST_UNSET}"'),
    ),
    Bad(
        "env-value-with-ESC",
        "pipeline.yaml",
        3,
        "service.cluster",
        "control character",
        pipeline=_p("cluster: shine", "cluster: ${SNAIL_TEST_ESC}"),
        env={"SNAIL_TEST_ESC": "a\x1b[2Jb"},
    ),
    # ---- paths outside the repository
    Bad(
        "context-outside",
        "one.yaml",
        2,
        "image.context",
        "outside the repository",
        phase="name: one\nimage: {context: ../OUT}\n",
    ),
    Bad(
        "context-absolute-outside",
        "one.yaml",
        2,
        "image.context",
        "outside the repository",
        phase="name: one\nimage: {context: /usr}\n",
    ),
    Bad(
        "dockerfile-outside",
        "one.yaml",
        2,
        "image.dockerfile",
        "outside the repository",
        phase="name: one\nimage: {context: images/one, dockerfile: ../../../OUT/Dockerfile}\n",
        setup=_context,
    ),
    Bad(
        "task-definition-outside",
        "pipeline.yaml",
        8,
        "service.task_definition",
        "outside the repository",
        pipeline=_p("  port: 5000\n", "  port: 5000\n  task_definition: ../OUT/taskdef.json\n"),
    ),
    Bad(
        "task-definition-dev-zero",
        "pipeline.yaml",
        8,
        "service.task_definition",
        "outside the repository",
        pipeline=_p("  port: 5000\n", "  port: 5000\n  task_definition: /dev/zero\n"),
    ),
    # ---- issue 25: AWS's own naming rules (orchestrator/config/names.py cites them)
    Bad(
        "cluster-slash",
        "pipeline.yaml",
        3,
        "service.cluster",
        "has '/'",
        pipeline=_p("cluster: shine", "cluster: shine/prod"),
    ),
    Bad(
        "cluster-space",
        "pipeline.yaml",
        3,
        "service.cluster",
        "U+0020",
        pipeline=_p("cluster: shine", 'cluster: "shine prod"'),
    ),
    Bad(
        "cluster-newline",
        "pipeline.yaml",
        3,
        "service.cluster",
        "U+000A",
        pipeline=_p("cluster: shine", 'cluster: "shine\\n"'),
    ),
    Bad(
        "cluster-256",
        "pipeline.yaml",
        3,
        "service.cluster",
        "256 characters; ECS takes at most 255",
        pipeline=_p("cluster: shine", "cluster: " + "c" * 256),
    ),
    Bad(
        "cluster-arn",
        "pipeline.yaml",
        3,
        "service.cluster",
        "give the cluster's name, not its ARN (here: 'shine')",
        pipeline=_p("cluster: shine", "cluster: arn:aws:ecs:us-east-1:123456789012:cluster/shine"),
    ),
    Bad(
        "cluster-unicode",
        "pipeline.yaml",
        3,
        "service.cluster",
        "has 'ѕ'",
        pipeline=_p("cluster: shine", "cluster: ѕhine"),
    ),
    Bad(
        "service-slash",
        "pipeline.yaml",
        4,
        "service.name",
        "has '/'",
        pipeline=_p("name: shine-api-gateway", "name: api/v2"),
    ),
    Bad(
        "service-dot",
        "pipeline.yaml",
        4,
        "service.name",
        "has '.'",
        pipeline=_p("name: shine-api-gateway", "name: shine.api"),
    ),
    Bad(
        "service-256",
        "pipeline.yaml",
        4,
        "service.name",
        "256 characters",
        pipeline=_p("name: shine-api-gateway", "name: " + "s" * 256),
    ),
    Bad(
        "container-empty",
        "pipeline.yaml",
        6,
        "service.container",
        "the container name is empty",
        pipeline=_p("container: api", 'container: ""'),
    ),
    Bad(
        "container-blank",
        "pipeline.yaml",
        6,
        "service.container",
        "the container name is empty",
        pipeline=_p("container: api", 'container: "  "'),
    ),
    Bad(
        "container-space",
        "pipeline.yaml",
        6,
        "service.container",
        "U+0020",
        pipeline=_p("container: api", 'container: "my api"'),
    ),
    Bad(
        "container-colon",
        "pipeline.yaml",
        6,
        "service.container",
        "has ':'",
        pipeline=_p("container: api", 'container: "api:1"'),
    ),
    Bad(
        "template-container-empty",
        "taskdef.json",
        1,
        "containerDefinitions[1].name",
        "the container name is empty",
        pipeline=WITH_TEMPLATE,
        setup=_template('{"containerDefinitions": [{"name": "api"}, {"name": ""}]}'),
    ),
    Bad(
        "template-container-slash",
        "taskdef.json",
        3,
        "containerDefinitions[1].name",
        "has '/'",
        pipeline=WITH_TEMPLATE,
        setup=_template('{"containerDefinitions": [\n  {"name": "api"},\n  {"name": "side/car"}\n]}'),
    ),
    Bad(
        "template-family-space",
        "taskdef.json",
        1,
        "family",
        "U+0020",
        pipeline=WITH_TEMPLATE,
        setup=_template('{"family": "shine api", "containerDefinitions": [{"name": "api"}]}'),
    ),
    Bad(
        "ecr-uppercase",
        "pipeline.yaml",
        9,
        "registry.ecr",
        "(write 'shine-api')",
        pipeline=_registry("  ecr: Shine-Api"),
    ),
    Bad(
        "ecr-with-host",
        "pipeline.yaml",
        9,
        "registry.ecr",
        "takes the repository name, not its URI",
        pipeline=_registry("  ecr: 123456789012.dkr.ecr.us-east-1.amazonaws.com/shine"),
    ),
    Bad("ecr-one-char", "pipeline.yaml", 9, "registry.ecr", "2 to 256 characters", pipeline=_registry("  ecr: s")),
    Bad(
        "ecr-trailing-slash",
        "pipeline.yaml",
        9,
        "registry.ecr",
        "not an ECR repository name",
        pipeline=_registry("  ecr: shine/"),
    ),
    Bad(
        "ecr-double-dot",
        "pipeline.yaml",
        9,
        "registry.ecr",
        "not an ECR repository name",
        pipeline=_registry("  ecr: shine..api"),
    ),
    Bad(
        "url-no-host",
        "pipeline.yaml",
        9,
        "registry.url",
        "must be HOST[:PORT]/NAME",
        pipeline=_registry("  url: /shine-api-gateway"),
    ),
    Bad(
        "url-name-only",
        "pipeline.yaml",
        9,
        "registry.url",
        "must be HOST[:PORT]/NAME",
        pipeline=_registry("  url: shine-api-gateway"),
    ),
    Bad(
        "url-scheme-no-host",
        "pipeline.yaml",
        9,
        "registry.url",
        "must be HOST[:PORT]/NAME",
        pipeline=_registry('  url: "http:///shine"'),
    ),
    Bad(
        "url-uppercase-name",
        "pipeline.yaml",
        9,
        "registry.url",
        "not a valid repository name",
        pipeline=_registry("  url: 127.0.0.1:5055/Shine"),
    ),
    Bad("digest-short", "one.yaml", 2, "image.ref", "has 3 hex digits, not 64", phase=_ref(DIGEST_REF + "abc")),
    Bad("digest-65", "one.yaml", 2, "image.ref", "has 65 hex digits, not 64", phase=_ref(DIGEST_REF + "a" * 65)),
    Bad("digest-not-hex", "one.yaml", 2, "image.ref", "has 'g'", phase=_ref(DIGEST_REF + "g" * 64)),
    Bad(
        "digest-sha512",
        "one.yaml",
        2,
        "image.ref",
        "sha256 is the only hash",
        phase=_ref(DIGEST_REF.replace("256", "512") + "a" * 128),
    ),
    Bad(
        "digest-empty",
        "one.yaml",
        2,
        "image.ref",
        "sha256 is the only hash",
        phase=_ref("127.0.0.1:5055/shine-api-gateway@"),
    ),
    Bad(
        "digest-no-repository",
        "one.yaml",
        2,
        "image.ref",
        "no repository before the '@'",
        phase=_ref("@sha256:" + "a" * 64),
    ),
    Bad("ref-space", "one.yaml", 2, "image.ref", "U+0020", phase=_ref("127.0.0.1:5055/shine api:1")),
    Bad("ref-256", "one.yaml", 2, "image.ref", "at most 255", phase=_ref("r" * 256 + "@sha256:" + "a" * 64)),
    Bad(
        "region-garbage",
        "pipeline.yaml",
        5,
        "service.region",
        "is not an AWS region name",
        pipeline=_p("region: us-east-1", "region: us-east-1/../../evil.com#"),
    ),
    Bad(
        "region-host",
        "pipeline.yaml",
        5,
        "service.region",
        "is not an AWS region name",
        pipeline=_p("region: us-east-1", "region: evil.com"),
    ),
    Bad(
        "region-upper",
        "pipeline.yaml",
        5,
        "service.region",
        "is not an AWS region name",
        pipeline=_p("region: us-east-1", "region: US-EAST-1"),
    ),
    Bad(
        "region-from-env",
        "pipeline.yaml",
        5,
        "service.region",
        "(after ${SNAIL_TEST_REGION} was expanded)",
        pipeline=_p("region: us-east-1", "region: ${SNAIL_TEST_REGION}"),
        env={"SNAIL_TEST_REGION": "us-east-1.evil.com"},
    ),
    Bad(
        "dynamodb-table-slash",
        "pipeline.yaml",
        17,
        "state.table",
        "has '/'",
        pipeline=PIPELINE + "state:\n  backend: dynamodb\n  table: snail/state\n",
    ),
    Bad(
        "dynamodb-table-short",
        "pipeline.yaml",
        17,
        "state.table",
        "3 to 255 characters",
        pipeline=PIPELINE + "state:\n  backend: dynamodb\n  table: sn\n",
    ),
    # ---- issue 25: interpolation
    Bad(
        "nested-default-unset",
        "pipeline.yaml",
        3,
        "service.cluster",
        "${SNAIL_TEST_UNSET2} is not set",
        pipeline=_p("cluster: shine", "cluster: ${SNAIL_TEST_UNSET:-${SNAIL_TEST_UNSET2}}"),
    ),
    Bad(
        "reference-unclosed",
        "pipeline.yaml",
        3,
        "service.cluster",
        "no closing '}'",
        pipeline=_p("cluster: shine", 'cluster: "${SNAIL_TEST_UNSET"'),
    ),
    Bad(
        "default-unclosed",
        "pipeline.yaml",
        3,
        "service.cluster",
        "no closing '}'",
        pipeline=_p("cluster: shine", 'cluster: "${SNAIL_TEST_UNSET:-${A}"'),
    ),
    Bad(
        "reference-shell-operator",
        "pipeline.yaml",
        3,
        "service.cluster",
        "snail reads ${SNAIL_TEST_UNSET} and",
        pipeline=_p("cluster: shine", 'cluster: "${SNAIL_TEST_UNSET:?required}"'),
    ),
    Bad(
        "reference-no-name",
        "pipeline.yaml",
        3,
        "service.cluster",
        "after '${' comes a variable name",
        pipeline=_p("cluster: shine", 'cluster: "${1}"'),
    ),
    Bad(
        "defaults-nested-too-deep",
        "pipeline.yaml",
        3,
        "service.cluster",
        "nested more than 8 deep",
        pipeline=_p("cluster: shine", 'cluster: "' + "${A:-" * 20 + "x" + "}" * 20 + '"'),
    ),
    Bad(
        "empty-required-from-env",
        "pipeline.yaml",
        3,
        "service.cluster",
        "the cluster name is empty (after ${SNAIL_TEST_EMPTY} was expanded)",
        pipeline=_p("cluster: shine", "cluster: ${SNAIL_TEST_EMPTY}"),
        env={"SNAIL_TEST_EMPTY": ""},
    ),
    Bad(
        "empty-required-default",
        "pipeline.yaml",
        4,
        "service.name",
        "the service name is empty",
        pipeline=_p("name: shine-api-gateway", 'name: "${SNAIL_TEST_UNSET:-}"'),
    ),
    Bad(
        "empty-required-target-group",
        "pipeline.yaml",
        8,
        "service.load_balancer.target_group_arn",
        "is required and is empty (after ${SNAIL_TEST_EMPTY} was expanded)",
        pipeline=_p("  port: 5000\n", '  port: 5000\n  load_balancer: {target_group_arn: "${SNAIL_TEST_EMPTY}"}\n'),
        env={"SNAIL_TEST_EMPTY": ""},
    ),
    Bad(
        "reference-in-environment-name",
        "one.yaml",
        3,
        "task.environment.${SNAIL_TEST_KEY}",
        "never in names (keys)",
        phase=_phase('task: {environment: {"${SNAIL_TEST_KEY}": x}}\n'),
        env={"SNAIL_TEST_KEY": "K"},
    ),
    Bad(
        "reference-in-json-field",
        "one.yaml",
        4,
        "gates[0].expect.json.${SNAIL_TEST_KEY}",
        "never in names (keys)",
        phase=_phase('gates:\n  - {type: http, path: /x, expect: {json: {"${SNAIL_TEST_KEY}": 1}}}\n'),
        env={"SNAIL_TEST_KEY": "ready"},
    ),
    Bad(
        "unset-in-json-value",
        "one.yaml",
        4,
        "gates[0].expect.json.status",
        "${SNAIL_TEST_UNSET} is not set",
        phase=_phase('gates:\n  - {type: http, path: /x, expect: {json: {status: "${SNAIL_TEST_UNSET}"}}}\n'),
    ),
    Bad(
        "malformed-in-command-gate",
        "one.yaml",
        4,
        "gates[0].run",
        "snail reads ${SNAIL_ENDPOINT} and ${SNAIL_ENDPOINT:-default} only",
        phase=_phase('gates:\n  - {type: command, run: "curl ${SNAIL_ENDPOINT%/}/health"}\n'),
    ),
    # ---- issue 25: other
    Bad(
        "dockerfile-symlink-out",
        "one.yaml",
        2,
        "image.context",
        "outside the repository",
        phase="name: one\nimage: {context: images/one}\n",
        setup=_dockerfile_symlinked_out,
    ),
    Bad(
        "template-NaN",
        "taskdef.json",
        2,
        None,
        "NaN is not JSON",
        pipeline=WITH_TEMPLATE,
        setup=_template('{"containerDefinitions": [{"name": "api"}],\n "cpu": NaN}'),
    ),
    Bad(
        "template-minus-Infinity",
        "taskdef.json",
        1,
        None,
        "-Infinity is not JSON",
        pipeline=WITH_TEMPLATE,
        setup=_template('{"memory": -Infinity, "containerDefinitions": [{"name": "api"}]}'),
    ),
]


def _write(tmp: Path, case: Bad) -> Path:
    """The case's pipeline folder (phases one and two; `OUT` in paths names a folder outside it)."""
    (tmp / "phases").mkdir(exist_ok=True)
    out = _outside_dir(tmp)
    for name, content in (("pipeline.yaml", case.pipeline), ("phases/one.yaml", case.phase)):
        if isinstance(content, str):
            content = content.replace("OUT", out.name).encode()
        (tmp / name).write_bytes(content)
    (tmp / "phases" / "two.yaml").write_text(PHASE.format(name="two", digest="b" * 64))
    if case.setup:
        case.setup(tmp)
    return tmp / "pipeline.yaml"


def _errors(path: Path) -> list[ConfigError]:
    with pytest.raises(ConfigErrors) as exc:
        load_pipeline(path)
    return exc.value.errors


@pytest.mark.parametrize("case", CORPUS, ids=[c.id for c in CORPUS])
def test_bad_input_is_one_located_error(
    case: Bad, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each hostile input: ConfigErrors naming its file, line and key (no raw control character), and
    `snail validate` exits 2 printing one `error: file:line: key: message` line per mistake, no traceback."""
    for name in ("SNAIL_TEST_UNSET", "SNAIL_TEST_UNSET2", "A"):
        monkeypatch.delenv(name, raising=False)
    for k, v in case.env.items():
        monkeypatch.setenv(k, v)
    errors = _errors(_write(tmp_path, case))
    match = [
        e
        for e in errors
        if Path(e.path).name == case.file
        and (case.line is None or e.line == case.line)
        and (case.key is None or e.key == case.key)
        and case.says in e.message
    ]
    assert match, [str(e) for e in errors]
    for e in errors:
        text = str(e)
        assert not any(ord(c) < 32 or 0x7F <= ord(c) < 0xA0 or 0x202A <= ord(c) <= 0x202E for c in text), text
        assert len(text) < 2000, text[:200]
    code, out = _validate(tmp_path / "pipeline.yaml", capsys)
    assert code == 2 and "Traceback" not in out
    lines = out.splitlines()
    assert len(lines) == len(errors) and all(line.startswith("error: ") for line in lines), lines
    where = f"{match[0].path}:{match[0].line}: " if match[0].line else f"{match[0].path}: "
    assert any(line.startswith(f"error: {where}{match[0].key + ': ' if match[0].key else ''}") for line in lines)


def _validate(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """`snail -f PATH validate` in this process: its exit code and everything it printed."""
    from orchestrator.cli.main import main

    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(["-f", str(path), "validate"])
    captured = capsys.readouterr()
    return int(exc.value.code or 0), captured.out + captured.err


# ------------------------------------------------------------------ any value anywhere: never a crash

_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.sampled_from(["${SNAIL_TEST_UNSET}", "٥", "²", "10ms", "-1s", "javascript:x", "../..", "/dev/zero", "a" * 300]),
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)
_PHASE_DOC = {
    "name": "one",
    "image": {
        "context": "images/one",
        "dockerfile": "Dockerfile",
        "build_args": {"A": "1"},
        "probe": {"timeout": "3s"},
    },
    "task": {"cpu": 256, "memory": 512, "environment": {"A": "1"}, "secrets": {"S": "arn:x"}, "command": ["a"]},
    "gates": [
        {"type": "http", "path": "/x", "expect": {"status": [200], "json": {"a": [1]}}, "retries": {"attempts": 2}},
        {"type": "command", "run": ["echo", "hi"], "env": {"X": "1"}},
        {"type": "alarm", "alarms": ["a"]},
    ],
    "bake": "1s",
    "approval": "manual",
}


def _leaf_paths(doc: object, prefix: tuple = ()) -> list[tuple]:
    if isinstance(doc, dict):
        return [prefix] + [p for k, v in doc.items() for p in _leaf_paths(v, (*prefix, k))]
    if isinstance(doc, list):
        return [prefix] + [p for i, v in enumerate(doc) for p in _leaf_paths(v, (*prefix, i))]
    return [prefix]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(where=st.sampled_from(_leaf_paths(_PHASE_DOC)[1:]), value=_VALUES)
def test_any_value_at_any_key_is_loaded_or_refused_never_a_crash(tmp_path: Path, where: tuple, value: object) -> None:
    """Replacing any key's value in a phase file by any YAML value either loads or gives ConfigErrors."""
    doc = json.loads(json.dumps(_PHASE_DOC))
    target = doc
    for step in where[:-1]:
        target = target[step]
    target[where[-1]] = value
    try:
        text = yaml.safe_dump(doc, allow_unicode=True)
    except yaml.YAMLError:
        return
    _context(tmp_path)
    path = _write(tmp_path, Bad("fuzz", "", None, None, "", phase=text))
    try:
        load_pipeline(path)
    except ConfigErrors as exc:
        assert all(e.path for e in exc.errors)


# ------------------------------------------------------------------ through the CLI, as a separate process

_LOAD = """
import sys
from orchestrator.config import load_pipeline
from orchestrator.errors import ConfigErrors
try:
    load_pipeline(sys.argv[1])
    print("accepted")
except ConfigErrors as exc:
    print("\\n".join(str(e) for e in exc.errors))
"""


def _child_load(path: Path) -> str:
    """load_pipeline in a child process, its output. Opening or reading a FIFO with no writer blocks forever, so a
    loader that waited on one never answers: the child is killed at the timeout and the test fails on that, not on
    how long a refusal took."""
    proc = subprocess.run(
        [sys.executable, "-c", _LOAD, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).parents[2],
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _fifo_pipeline(tmp: Path) -> Path:
    os.mkfifo(tmp / "pipeline.yaml")
    return tmp / "pipeline.yaml"


def _fifo_phase(tmp: Path) -> Path:
    (tmp / "pipeline.yaml").write_text(PIPELINE)
    (tmp / "phases").mkdir()
    os.mkfifo(tmp / "phases" / "one.yaml")
    (tmp / "phases" / "two.yaml").write_text(PHASE.format(name="two", digest="b" * 64))
    return tmp / "pipeline.yaml"


def _dev_zero_pipeline(tmp: Path) -> Path:
    (tmp / "pipeline.yaml").symlink_to("/dev/zero")
    return tmp / "pipeline.yaml"


def _dev_zero_phase(tmp: Path) -> Path:
    (tmp / "pipeline.yaml").write_text(PIPELINE)
    (tmp / "phases").mkdir()
    (tmp / "phases" / "one.yaml").symlink_to("/dev/zero")
    (tmp / "phases" / "two.yaml").write_text(PHASE.format(name="two", digest="b" * 64))
    return tmp / "pipeline.yaml"


def _fifo_template(tmp: Path) -> Path:
    _fifo_phase(tmp)
    (tmp / "phases" / "one.yaml").unlink()
    (tmp / "phases" / "one.yaml").write_text(GOOD_PHASE)
    (tmp / "pipeline.yaml").write_text(_p("  port: 5000\n", "  port: 5000\n  task_definition: taskdef.json\n"))
    os.mkfifo(tmp / "taskdef.json")
    return tmp / "pipeline.yaml"


def _phases_folder_out(tmp: Path) -> Path:
    (tmp / "pipeline.yaml").write_text(PIPELINE)
    out = _outside_dir(tmp)
    (out / "phases").mkdir(exist_ok=True)
    for name in ("one", "two"):
        (out / "phases" / f"{name}.yaml").write_text(PHASE.format(name=name, digest="c" * 64))
    (tmp / "phases").symlink_to(out / "phases")
    return tmp / "pipeline.yaml"


def _dev_zero_direct(tmp: Path) -> Path:
    return Path("/dev/zero")


HANGS = {
    "fifo-pipeline": (_fifo_pipeline, "pipeline.yaml: is a named pipe (FIFO), not a regular file"),
    "fifo-phase": (_fifo_phase, "one.yaml: is a named pipe (FIFO), not a regular file"),
    "dev-zero-pipeline": (_dev_zero_pipeline, "pipeline.yaml: leads to /dev/zero, outside the repository"),
    "dev-zero-phase": (_dev_zero_phase, "one.yaml: leads to /dev/zero, outside the repository"),
    "dev-zero-direct": (_dev_zero_direct, "/dev/zero: is a character device, not a regular file"),
    "fifo-template": (_fifo_template, "taskdef.json: is a named pipe (FIFO), not a regular file"),
    "phases-folder-symlinked-out": (_phases_folder_out, "one.yaml: leads to"),
}


@pytest.mark.process
@pytest.mark.parametrize("name", list(HANGS))
def test_fifo_and_devices_are_refused_never_read(name: str, tmp_path: Path) -> None:
    """A FIFO or /dev/zero is refused by what it is (fstat before reading, the path's target), never read or waited
    on: the message names the kind of file, and the load answers at all."""
    make, expected = HANGS[name]
    out = _child_load(make(tmp_path))
    assert expected in out, out


@pytest.mark.process
def test_huge_file_refused_by_its_size(tmp_path: Path) -> None:
    """A 40 MB pipeline.yaml is refused by its size before it is parsed."""
    path = tmp_path / "pipeline.yaml"
    path.write_text(PIPELINE + ("# " + "y" * 1000 + "\n") * 40_000)
    out = _child_load(path)
    assert "the limit is 1 MiB per file" in out, out


def test_validate_cli_reports_each_error_and_exits_2_without_changes(tmp_path: Path) -> None:
    """`snail validate` prints one `error: file:line: key: message` line per mistake, exits 2, writes nothing."""
    _write(tmp_path, next(c for c in CORPUS if c.id == "lease-0"))
    (tmp_path / "phases" / "one.yaml").write_text(_phase('task: {environment: {A: "\\e]0;owned\\a"}}\n'))
    before = sorted(p.name for p in tmp_path.rglob("*"))
    proc = snail(tmp_path, "validate", hermetic=True)
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.startswith("error:")]
    assert any("pipeline.yaml:16: state.lease: " in line for line in lines), lines
    assert any("one.yaml:3: task.environment.A: control character" in line for line in lines), lines
    assert "Traceback" not in proc.stderr
    assert "\x1b" not in proc.stdout + proc.stderr
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


def test_validate_json_lists_errors(tmp_path: Path) -> None:
    """With --output json the errors are data: file, line, key, message."""
    _write(tmp_path, next(c for c in CORPUS if c.id == "lease-0"))
    proc = snail(tmp_path, "--output", "json", "validate", hermetic=True)
    assert proc.returncode == 2
    doc = json.loads(proc.stdout)
    errors = doc.get("errors") or doc.get("result", {}).get("errors")
    assert {"file": str(tmp_path / "pipeline.yaml"), "line": 16, "key": "state.lease"}.items() <= errors[0].items()


def test_pipeline_found_from_a_subfolder(tmp_path: Path) -> None:
    """Without -f, validate finds pipeline.yaml in a folder above, as git finds .git."""
    path = _write(tmp_path, Bad("ok", "", None, None, ""))
    proc = snail(path.parent / "phases", "validate", hermetic=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "are valid: one -> two" in proc.stdout


def test_pipeline_not_found_says_where_it_looked(tmp_path: Path) -> None:
    """No pipeline.yaml anywhere above: exit 2, naming the folder searched and the -f option."""
    proc = snail(tmp_path, "validate", hermetic=True)
    assert proc.returncode == 2
    err = proc.stdout + proc.stderr
    assert f"not found in {tmp_path} or any folder above it" in err and "-f" in err, err


# ------------------------------------------------------------------ valid YAML that must stay valid


def test_merge_keys_are_accepted(tmp_path: Path) -> None:
    """YAML merge keys (`<<: *anchor`) are valid: merged values load, explicit keys win."""
    pipeline = _p(
        "    - {type: http, path: /health, expect: {status: 200}}",
        "    - &probe {type: http, path: /health, expect: {status: 200}, retries: &r {attempts: 5, wait: 1s}}\n"
        "    - {<<: *probe, path: /ready, retries: {<<: *r, wait: 2s}}",
    )
    phase = _phase("task:\n  environment:\n    <<: {A: '1', B: '2'}\n    B: '3'\n")
    p = load_pipeline(_write(tmp_path, Bad("merge", "", None, None, "", pipeline=pipeline, phase=phase)))
    first, second = p.phase("one").gates
    assert (first.type, second.type) == ("http", "http")
    assert (second.path, second.retries.attempts, second.retries.wait) == ("/ready", 5, 2.0)
    assert p.phase("one").task.environment == {"A": "1", "B": "3"}


def test_default_for_unset_variable_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """${VAR:-default} is not an error when VAR is unset; ${VAR:-} is an explicit empty default."""
    monkeypatch.delenv("SNAIL_TEST_UNSET", raising=False)
    path = _write(
        tmp_path, Bad("ok", "", None, None, "", pipeline=_p("cluster: shine", "cluster: ${SNAIL_TEST_UNSET:-blue}"))
    )
    assert load_pipeline(path).service.cluster == "blue"


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    """A UTF-8 byte-order mark (as some editors write) is fine."""
    path = _write(tmp_path, Bad("bom", "", None, None, "", pipeline=b"\xef\xbb\xbf" + PIPELINE.encode()))
    assert load_pipeline(path).service.port == 5000


def test_outside_paths_allowed_with_opt_in(tmp_path: Path) -> None:
    """`allow_outside_repo: true` lets a build context and template live outside the repository."""
    out = _outside_dir(tmp_path)
    pipeline = _p("  port: 5000\n", f"  port: 5000\n  task_definition: ../{out.name}/taskdef.json\n")
    case = Bad(
        "opt-in",
        "",
        None,
        None,
        "",
        pipeline=pipeline + "allow_outside_repo: true\n",
        phase=f"name: one\nimage: {{context: ../{out.name}}}\n",
    )
    p = load_pipeline(_write(tmp_path, case))
    assert p.phase("one").image.context is not None and p.service.task_definition is not None


# ------------------------------------------------------------------ offline checks (issue 14)

TEMPLATE = {
    "family": "shine-api-gateway",
    "cpu": "256",
    "memory": "512",
    "containerDefinitions": [{"name": "api", "image": "PLACEHOLDER"}],
}


def _with_template(tmp: Path, text: str, pipeline_extra: str = "", phase: str = GOOD_PHASE) -> Path:
    pipeline = _p("  port: 5000\n", "  port: 5000\n  task_definition: phases/taskdef.json\n" + pipeline_extra)
    path = _write(tmp, Bad("t", "", None, None, "", pipeline=pipeline, phase=phase))
    (tmp / "phases" / "taskdef.json").write_text(text)
    return path


def _one(errors: list[ConfigError], file: str) -> ConfigError:
    found = [e for e in errors if Path(e.path).name == file]
    assert len(found) == 1, [str(e) for e in errors]
    return found[0]


def test_template_invalid_json_names_line_and_column(tmp_path: Path) -> None:
    """A broken task-definition template is reported at its line and column, before any AWS call."""
    text = json.dumps(TEMPLATE, indent=2).replace('"memory": "512",', '"memory": "512"')
    e = _one(_errors(_with_template(tmp_path, text)), "taskdef.json")
    assert e.line == 5 and "invalid JSON at column 3" in e.message, str(e)


def test_template_without_the_service_container(tmp_path: Path) -> None:
    """The template must have a container named service.container."""
    text = json.dumps({**TEMPLATE, "containerDefinitions": [{"name": "web"}]}, indent=2)
    e = _one(_errors(_with_template(tmp_path, text)), "taskdef.json")
    assert e.key == "containerDefinitions" and e.line == 5
    assert "no container named 'api'" in e.message and "'web'" in e.message


@pytest.mark.parametrize(
    "cpu, memory, ok",
    [
        (256, 512, True),
        (256, 4096, False),
        (512, 3072, True),
        (1024, 9216, False),
        (4096, 30720, True),
        (4096, 8704, False),
        (8192, 20480, True),
        (8192, 17408, False),
        (16384, 122880, True),
        (300, 1024, False),
    ],
)
def test_fargate_cpu_memory_table(cpu: int, memory: int, ok: bool) -> None:
    """Fargate's cpu/memory table: only the listed pairs run."""
    from orchestrator.config.offline import fargate_problem

    assert (fargate_problem(cpu, memory) is None) == ok


def test_fargate_pair_refused_in_template(tmp_path: Path) -> None:
    """256 CPU with 4096 MB in the template is refused at the template's cpu line."""
    text = json.dumps({**TEMPLATE, "memory": "4096"}, indent=2)
    e = _one(_errors(_with_template(tmp_path, text)), "taskdef.json")
    assert e.line == 3 and "Fargate does not run cpu 256 with memory 4096" in e.message


def test_fargate_pair_refused_in_phase(tmp_path: Path) -> None:
    """A phase's task.memory that does not fit the template's cpu is refused at that phase line."""
    path = _with_template(tmp_path, json.dumps(TEMPLATE), phase=_phase("task:\n  memory: 4096\n"))
    e = _one(_errors(path), "one.yaml")
    assert (e.line, e.key) == (4, "task.memory") and "with cpu 256, memory is 512, 1024, 2048" in e.message


def test_fargate_table_not_applied_to_ec2(tmp_path: Path) -> None:
    """launch_type EC2 has no Fargate table."""
    path = _with_template(tmp_path, json.dumps({**TEMPLATE, "memory": "4096"}), pipeline_extra="  launch_type: EC2\n")
    assert load_pipeline(path).service.launch_type == "EC2"


def test_missing_dockerfile(tmp_path: Path) -> None:
    """A build context without its Dockerfile is reported at image.context; a named one at image.dockerfile."""
    case = Bad(
        "df", "", None, None, "", phase="name: one\nimage:\n  context: images/one\n", setup=lambda t: _context(t, False)
    )
    e = _one(_errors(_write(tmp_path, case)), "one.yaml")
    assert (e.line, e.key) == (3, "image.context") and "no Dockerfile at images/one/Dockerfile" in e.message
    (tmp_path / "phases" / "one.yaml").write_text(
        "name: one\nimage:\n  context: images/one\n  dockerfile: Dockerfile.ml\n"
    )
    e = _one(_errors(tmp_path / "pipeline.yaml"), "one.yaml")
    assert (e.line, e.key) == (4, "image.dockerfile") and "images/one/Dockerfile.ml" in e.message


def test_reference_pipeline_passes_offline_checks() -> None:
    """The repository's own pipeline, template and images pass every offline check."""
    p = load_pipeline(Path(__file__).parents[2] / "pipeline.yaml")
    assert len(p.phases) == 4


def test_deleted_current_folder_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without -f, a current folder deleted under us is a ConfigError asking for -f, not a traceback."""
    from orchestrator.config import yamlio

    def gone() -> Path:
        raise FileNotFoundError(2, "No such file or directory")

    monkeypatch.setattr(Path, "cwd", staticmethod(gone))
    with pytest.raises(ConfigErrors) as exc:
        yamlio.find_pipeline()
    assert "cannot tell the current folder" in str(exc.value) and "-f PATH" in str(exc.value)
