"""Doctor's pure logic: report status, rendering, rolling room, image refs, IAM wildcards, the runner, summaries."""

from __future__ import annotations

import pytest

from orchestrator.doctor.context import Skip
from orchestrator.doctor.diagnose import ContainerExit, Diagnosis, StoppedTask
from orchestrator.doctor.image_pull import grants, split_image
from orchestrator.doctor.model import Check, DoctorReport
from orchestrator.doctor.network import admits, default_target
from orchestrator.doctor.render import render_text
from orchestrator.doctor.runner import Result, check, make
from orchestrator.doctor.service_checks import rolling_room
from orchestrator.errors import AccessDenied


def _c(cid, status, evidence="seen", fix=None):
    return Check(cid, f"title {cid}", status, evidence, fix)


def test_report_ok_ignores_warnings_unless_strict():
    """Warnings do not fail the report unless strict; a failure always does."""
    warn = DoctorReport((_c("a", "passed"), _c("b", "warning"), _c("c", "skipped")))
    assert warn.ok() and not warn.ok(strict=True)
    assert not DoctorReport((_c("a", "failed"),)).ok()
    assert [c.id for c in warn.warnings] == ["b"] and warn.failed == ()


def test_report_to_dict_counts_and_lists_checks():
    """to_dict carries ok, counts per status and every check."""
    d = DoctorReport((_c("a", "passed"), _c("b", "failed", fix="do it"))).to_dict()
    assert d["ok"] is False
    assert d["counts"] == {"passed": 1, "warning": 0, "failed": 1, "skipped": 0}
    assert d["checks"][1] == {"id": "b", "title": "title b", "status": "failed", "evidence": "seen", "fix": "do it"}


def test_render_text_marks_and_indents():
    """✔ ! ✘ - marks; passed/skipped on one line; failures show evidence lines and the fix indented."""
    text = render_text(
        DoctorReport(
            (
                _c("a", "passed", "fine\nmore"),
                _c("b", "warning", "hmm"),
                _c("c", "failed", "broken\ndetail", "aws x"),
                _c("d", "skipped", "skipped: no lb"),
            )
        )
    )
    assert text.splitlines() == [
        "doctor: 1 passed, 1 warning(s), 1 failed, 1 skipped",
        "✔ title a [a] — fine",
        "! title b [b]",
        "    hmm",
        "✘ title c [c]",
        "    broken",
        "    detail",
        "    fix: aws x",
        "- title d [d] — skipped: no lb",
    ]


@pytest.mark.parametrize(
    "desired,minimum,maximum,expected",
    [
        (1, 100, 100, (0, 0)),  # the stuck case: cannot start, cannot stop
        (1, 100, 200, (0, 1)),
        (1, 0, 100, (1, 0)),
        (4, 50, 100, (2, 0)),
        (3, 100, 150, (0, 1)),  # max rounds down: 4.5 -> 4
        (3, 67, 100, (0, 0)),  # min rounds up: 2.01 -> 3
    ],
)
def test_rolling_room(desired, minimum, maximum, expected):
    """ECS rounds maximumPercent down and minimumHealthyPercent up."""
    assert rolling_room(desired, minimum, maximum) == expected


@pytest.mark.parametrize(
    "ref,expected",
    [
        (
            "1.dkr.ecr.us-east-1.amazonaws.com/shine:v5",
            ("1.dkr.ecr.us-east-1.amazonaws.com", "shine", {"imageTag": "v5"}),
        ),
        (
            "1.dkr.ecr.us-east-1.amazonaws.com/team/shine@sha256:ab",
            ("1.dkr.ecr.us-east-1.amazonaws.com", "team/shine", {"imageDigest": "sha256:ab"}),
        ),
        (
            "1.dkr.ecr.us-east-1.amazonaws.com/shine",
            ("1.dkr.ecr.us-east-1.amazonaws.com", "shine", {"imageTag": "latest"}),
        ),
    ],
)
def test_split_image(ref, expected):
    """Image references split into host, repository and the describe_images id."""
    assert split_image(ref) == expected


def test_iam_action_wildcards():
    """Action patterns match case-insensitively with * wildcards; other services never match."""
    assert grants(["ecr:*"], "ecr:BatchGetImage")
    assert grants(["*"], "logs:PutLogEvents")
    assert grants(["LOGS:put*"], "logs:PutLogEvents")
    assert not grants(["ecr:Get*"], "ecr:BatchGetImage")
    assert not grants(["s3:*"], "ecr:GetAuthorizationToken")


@pytest.mark.parametrize(
    "perm,ok",
    [
        ({"IpProtocol": "tcp", "FromPort": 5000, "ToPort": 5000}, True),
        ({"IpProtocol": "tcp", "FromPort": 4000, "ToPort": 6000}, True),
        ({"IpProtocol": "-1"}, True),
        ({"IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080}, False),
        ({"IpProtocol": "udp", "FromPort": 5000, "ToPort": 5000}, False),
    ],
)
def test_security_group_rule_admits_port(perm, ok):
    """A rule admits tcp 5000 when its protocol and range cover it."""
    assert admits(perm, 5000) is ok


def test_default_route_ignores_blackholes_and_local():
    """Only an active 0.0.0.0/0 route counts; its target may be an IGW or a NAT."""
    assert default_target({"Routes": [{"DestinationCidrBlock": "10.0.0.0/16", "GatewayId": "local"}]}) is None
    assert (
        default_target({"Routes": [{"DestinationCidrBlock": "0.0.0.0/0", "GatewayId": "igw-1", "State": "blackhole"}]})
        is None
    )
    assert default_target({"Routes": [{"DestinationCidrBlock": "0.0.0.0/0", "NatGatewayId": "nat-1"}]}) == "nat-1"


def test_runner_turns_skip_and_access_denied_into_checks():
    """Skip -> skipped with the reason; AccessDenied -> failed naming the permission; a bug -> failed, not raised."""

    @check("x.skip", "skips")
    def skips(ctx):
        raise Skip("the service is missing")

    @check("x.denied", "denied")
    def denied(ctx):
        raise AccessDenied("iam:GetRole", "AccessDenied", "no")

    @check("x.bug", "bug")
    def bug(ctx):
        return {}["nope"]

    assert make(None, skips) == Check("x.skip", "skips", "skipped", "skipped: the service is missing", None)
    d = make(None, denied)
    assert d.status == "failed" and "lacks the iam:GetRole permission" in d.evidence and "iam:GetRole" in d.fix
    b = make(None, bug)
    assert b.status == "failed" and "KeyError" in b.evidence


def test_runner_masks_credentials_in_evidence():
    """Credential-looking tokens never leave a check."""

    @check("x.leak", "leak")
    def leak(ctx):
        return Result("passed", "key AKIAABCDEFGHIJKLMNOP seen", "use AKIAABCDEFGHIJKLMNOP")

    c = make(None, leak)
    assert "AKIA" not in c.evidence and "AKIA" not in c.fix


def test_summary_puts_pull_errors_first_with_their_cause():
    """A pull error is explained by the matching failed check, then other causes follow."""
    d = Diagnosis(
        service="s",
        revision="r",
        since=None,
        stopped_tasks=(
            StoppedTask(
                "t1",
                "s:3",
                "Task failed to start",
                "TaskFailedToStart",
                (ContainerExit("api", None, "CannotPullContainerError: timeout"),),
            ),
        ),
        failed_checks=(
            _c(
                "network.routes",
                "failed",
                "subnet-1 has no route to an internet gateway and assignPublicIp is DISABLED\nchain",
            ),
            _c("image.log-group", "failed", "log group /ecs/x does not exist"),
        ),
    )
    assert d.summary() == (
        "tasks stop with CannotPullContainerError: subnet-1 has no route to an internet gateway and "
        "assignPublicIp is DISABLED; doctor image.log-group: log group /ecs/x does not exist"
    )


def test_summary_with_nothing_found_says_so():
    """An empty diagnosis says the gate's own evidence is all there is."""
    assert "the gate's own evidence is all there is" in Diagnosis(service="s", revision=None, since=None).summary()
