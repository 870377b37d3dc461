"""What a command's result says (issue 19 item 8), the CLI as a separate process on moto's server and the sandbox
agent: `--output json` of a run names the revision, phase, image and digest now live and the phases it deployed
(CI needs no `status` call); a JSON log has each event once; status shows a held phase as held and forgets
quarantines of specs no file names any more; the result's grammar."""

from __future__ import annotations

import json

from tests.conftest import Behaviour
from tests.functional.world import live
from tests.harness.cli import snail
from tests.harness.pipeline import image, write_pipeline

PHASES = {"health-only": "a", "hybrid-ml": "b"}


def test_run_result_names_what_is_live_and_what_it_deployed(world) -> None:
    """One phase: `passed its gates` (singular). Then the JSON document of the next run: revision, phase, image,
    digest of hybrid-ml's revision and deployed == [hybrid-ml]; its JSON log says each event once. A no-op's
    document names the same revision with nothing deployed, and its text is said once, not twice."""
    write_pipeline(world["root"], PHASES)
    world["serve"]("a"), world["serve"]("b")
    first = snail(world, "run", "--skip-preflight", "--to", "health-only")
    assert first.returncode == 0 and "done: health-only passed its gates" in first.stdout, first.stdout + first.stderr

    r = snail(world, "--output", "json", "--log-format", "json", "run", "--skip-preflight")
    doc = json.loads(r.stdout)
    assert (r.returncode, doc["outcome"]) == (0, "succeeded"), r.stderr[-800:]
    assert doc["revision"] == live(world) and doc["revision"].endswith("shine-api-gateway:3")
    assert doc["phase"] == "hybrid-ml" and doc["image"] == image("b")
    assert doc["digest"] == image("b").split("@", 1)[1]
    assert doc["deployed"] == ["hybrid-ml"]
    logged = [json.loads(line) for line in r.stderr.splitlines() if line.strip()]
    said = [e for e in logged if "phase_passed" in (e.get("event"), e.get("kind"))]
    assert len(said) == 1 and said[0]["event"] == "progress", said  # once, as the documented progress line

    noop = snail(world, "--output", "json", "run", "--skip-preflight")
    doc = json.loads(noop.stdout)
    assert doc["outcome"] == "noop" and doc["deployed"] == [] and doc["revision"] == live(world)
    assert doc["phase"] == "hybrid-ml" and doc["digest"] == image("b").split("@", 1)[1]
    text = snail(world, "run", "--skip-preflight")
    assert (text.stdout + text.stderr).count("nothing to do") == 1, text.stdout + text.stderr


def test_status_shows_held_as_held_and_drops_quarantines_no_file_names(world) -> None:
    """A third phase fails (quarantined: status lists it); its file changes (status no longer does, the spec it
    names is new). A manual rollback holds hybrid-ml's revision: status says `[h] hybrid-ml: … passed its gates,
    held`, not `never passed`."""
    write_pipeline(world["root"], PHASES)
    world["serve"]("a"), world["serve"]("b")
    assert snail(world, "run", "--skip-preflight").returncode == 0
    write_pipeline(world["root"], {**PHASES, "optimized": "c"})
    world["serve"]("c", Behaviour(500, {"status": "failed"}))
    failed = snail(world, "run", "--skip-preflight")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    status = snail(world, "status")
    assert "phase optimized" in status.stdout and "quarantined" in status.stdout, status.stdout
    write_pipeline(world["root"], {**PHASES, "optimized": "d"})  # the failed spec is named by no file now
    status = json.loads(snail(world, "--output", "json", "status").stdout)
    assert status["blocked"] == [], status["blocked"]
    assert "quarantined" not in snail(world, "status").stdout

    back = snail(world, "rollback", "--reason", "slow answers")
    assert back.returncode == 0, back.stdout + back.stderr
    text = snail(world, "status").stdout
    held = next(line for line in text.splitlines() if "hybrid-ml:" in line and line.lstrip().startswith("["))
    assert held.lstrip().startswith("[h] hybrid-ml: shine-api-gateway:3 passed its gates, held since"), text
    assert "slow answers" in held and "never passed" not in held
    doc = json.loads(snail(world, "--output", "json", "status").stdout)
    assert doc["held"]["hybrid-ml"].endswith("shine-api-gateway:3")
