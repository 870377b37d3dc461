"""The alarm gate: none of the named CloudWatch alarms may be in ALARM."""

from __future__ import annotations

from orchestrator.aws.cloudwatch import CloudWatchClient
from orchestrator.config.gates import AlarmGate
from orchestrator.gates.context import GateContext
from orchestrator.gates.verdict import FAILED, INCONCLUSIVE, PASSED, Verdict


def evaluate(spec: AlarmGate, ctx: GateContext) -> Verdict:
    """Describe the alarms once; any in ALARM fails, a missing one is inconclusive."""
    assert ctx.aws is not None
    names = list(spec.alarms)
    found = CloudWatchClient(ctx.aws).alarms(names)
    evidence = {n: {"state": found[n]["StateValue"], "reason": found[n].get("StateReason", "")} for n in found}
    missing = [n for n in names if n not in found]
    firing = [n for n in found if found[n]["StateValue"] == "ALARM"]
    if firing:
        return Verdict(spec.label, FAILED, f"in ALARM: {', '.join(firing)}", evidence, definitive=True)
    if missing:
        return Verdict(spec.label, INCONCLUSIVE, f"alarm(s) not found: {', '.join(missing)}", evidence)
    return Verdict(spec.label, PASSED, f"{len(names)} alarm(s) not in ALARM", evidence)
