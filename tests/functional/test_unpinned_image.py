"""A mutable image tag in `ref:` is valid (ECS runs tags), but `validate` and `plan` warn that it is not pinned by
digest (issue 25): the tag can be moved to other bytes between the plan, the run and a rollback."""

from __future__ import annotations

import json

from tests.harness.cli import snail
from tests.harness.pipeline import image, write_pipeline

TAGGED = "127.0.0.1:5055/shine-api-gateway:latest"
WARNING = f"warning: phase health-only: image.ref {TAGGED} is not pinned by digest"


def _tagged(world) -> None:  # noqa: ANN001
    write_pipeline(world["root"], {"health-only": "a"})
    (world["root"] / "phases" / "health-only.yaml").write_text(f'name: health-only\nimage: {{ref: "{TAGGED}"}}\n')


def test_validate_warns_on_a_tag_and_still_accepts_it(world) -> None:  # noqa: ANN001
    """validate exits 0 with a warning naming the phase and the tag; --output json lists it."""
    _tagged(world)
    r = snail(world, "validate")
    assert r.returncode == 0, r.stdout + r.stderr
    assert WARNING in r.stdout, r.stdout
    doc = json.loads(snail(world, "--output", "json", "validate").stdout)
    assert any("not pinned by digest" in w for w in doc["warnings"]), doc


def test_plan_warns_on_a_tag(world) -> None:  # noqa: ANN001
    """plan prints the same warning (and has it in --output json); a digest-pinned ref gives none."""
    _tagged(world)
    r = snail(world, "plan")
    assert r.returncode == 0, r.stderr
    assert f"warning:  image.ref {TAGGED} is not pinned by digest" in r.stdout, r.stdout
    doc = json.loads(snail(world, "--output", "json", "plan").stdout)
    (phase,) = (doc.get("result") or doc)["phases"]
    assert any(TAGGED in w and "not pinned by digest" in w for w in phase["warnings"]), doc
    (world["root"] / "phases" / "health-only.yaml").write_text(f'name: health-only\nimage: {{ref: "{image("a")}"}}\n')
    pinned = snail(world, "plan")
    assert pinned.returncode == 0 and "not pinned by digest" not in pinned.stdout + pinned.stderr
