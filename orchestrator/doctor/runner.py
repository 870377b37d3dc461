"""How one check is made: Skip becomes `skipped`, AWS refusals become a failed check naming the permission."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import structlog

from orchestrator.doctor.context import DoctorContext, Skip
from orchestrator.doctor.model import FAILED, PASSED, SKIPPED, Check, Status
from orchestrator.errors import AccessDenied, AwsError, SnailError
from orchestrator.redact import mask_text

log = structlog.get_logger("snail.doctor")


@dataclass(frozen=True)
class Result:
    """What a check function concludes; the runner adds its id and title."""

    status: Status
    evidence: str
    fix: str | None = None


CheckFn = Callable[[DoctorContext], Result]


def check(check_id: str, title: str) -> Callable[[CheckFn], CheckFn]:
    """Mark a function as the doctor check `check_id`."""

    def deco(fn: CheckFn) -> CheckFn:
        fn.check_id = check_id  # type: ignore[attr-defined]
        fn.check_title = title  # type: ignore[attr-defined]
        return fn

    return deco


# Infrastructure a passed preflight vouches for while it is valid (network, execution role, log group): what the
# diagnosis after a rollback need not ask EC2, IAM and Logs again (10 calls and three clients on a failed run).
VOUCHED_BY_PREFLIGHT = ("network.", "image.execution-role", "image.log-group")


def make(ctx: DoctorContext, fn: CheckFn) -> Check:
    """Run one check function; never raises."""
    cid, title = fn.check_id, fn.check_title  # type: ignore[attr-defined]
    if cid.startswith(VOUCHED_BY_PREFLIGHT):
        age = ctx.preflight_age()
        if age is not None:
            evidence = f"passed in the preflight {age / 60:.0f} min ago, unchanged since (`snail doctor` re-checks)"
            return Check(id=cid, title=title, status=PASSED, evidence=evidence)
    try:
        r = fn(ctx)
    except Skip as exc:
        r = Result(SKIPPED, f"skipped: {exc}")
    except AccessDenied as exc:
        r = Result(
            FAILED,
            f"AWS refused {exc.operation} ({exc.code}): the identity running snail lacks the "
            f"{exc.operation} permission, so this cannot be checked",
            f"grant {exc.operation} to the identity running snail, e.g. the IAM policy statement "
            f'{{"Effect": "Allow", "Action": "{exc.operation}", "Resource": "*"}}',
        )
    except AwsError as exc:
        r = Result(FAILED, f"AWS call {exc.operation} failed: {exc.code}: {exc}")
    except SnailError as exc:
        r = Result(FAILED, str(exc))
    except Exception as exc:  # a bug in a check must not hide the other checks
        log.exception("doctor_check_crashed", check=cid)
        r = Result(FAILED, f"doctor could not make this check: {type(exc).__name__}: {exc}")
    chk = Check(
        id=cid, title=title, status=r.status, evidence=mask_text(r.evidence), fix=mask_text(r.fix) if r.fix else None
    )
    return chk


def run_checks(ctx: DoctorContext, fns: Iterable[CheckFn]) -> list[Check]:
    """Run several checks in order."""
    return [make(ctx, fn) for fn in fns]
