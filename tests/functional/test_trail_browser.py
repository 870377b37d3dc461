"""`snail trail --format html` opened in a real browser (headless Chromium from Debian): the page renders its
timeline, header and diagnosis, and fetches nothing from the network."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from orchestrator.state.sqlite import SqliteStore
from tests.harness.cli import snail
from tests.unit.trail_recorded import PHASES, recorded

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (Debian: apt-get install -y chromium); no browser to test with"
)
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # nothing may leave the machine even if the browser itself tries (update checks, sign-in)
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--no-proxy-server",
]


def _pipeline(tmp_path: Path) -> Path:
    """A pipeline folder whose local state store holds the recorded trail."""
    (tmp_path / "phases").mkdir()
    (tmp_path / "pipeline.yaml").write_text(
        "version: 1\nservice: {cluster: shine, name: shine-api-gateway, region: us-east-1, container: api, "
        "port: 5000}\nregistry: {url: 127.0.0.1:5055/shine-api-gateway}\n"
        f"phases: [{', '.join(PHASES)}]\n"
    )
    for name in PHASES:
        (tmp_path / "phases" / f"{name}.yaml").write_text(
            f'name: {name}\nimage: {{ref: "127.0.0.1:5055/shine-api-gateway@sha256:{"a" * 64}"}}\n'
        )
    events, runs, _ = recorded()
    store = SqliteStore(tmp_path / ".snail" / "state.db")
    for r in sorted(runs, key=lambda r: r.started_at):
        store.start_run(r)
        if r.finished_at:
            store.finish_run(r.run_id, r.status, r.exit_code or 0, r.message, r.finished_at)
    for e in events:
        store.append_event(e)
    return tmp_path / "pipeline.yaml"


def _chromium(tmp_path: Path, page: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    return subprocess.run(
        [CHROMIUM or "chromium", *FLAGS, f"--user-data-dir={profile}", *extra, page.as_uri()],
        capture_output=True,
        text=True,
        timeout=90,
    )


def _page_requests(netlog: Path) -> list[str]:
    """Network URLs requested on behalf of a page (the browser's own update/sign-in checks have no origin)."""
    data = json.loads(netlog.read_text())
    start = data["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    return [
        str(e["params"]["url"])
        for e in data["events"]
        if e["type"] == start
        and e.get("params", {}).get("initiator") != "not an origin"
        and str(e["params"].get("url", "")).startswith(("http:", "https:", "ws:", "wss:"))
    ]


@pytest.mark.process
def test_html_trail_in_headless_chromium(tmp_path: Path) -> None:
    """The CLI writes the page; Chromium renders it (screenshot), its DOM has the runs newest first with header,
    SVG timeline, gate ticks, decision, rollback, traffic and diagnosis, and its net log shows no network request."""
    pipeline = _pipeline(tmp_path)
    page = tmp_path / "trail.html"
    cli = snail(tmp_path, "-f", str(pipeline), "trail", "--format", "html", "--last", "5", "-o", str(page))
    assert cli.returncode == 0, cli.stderr
    html = page.read_text()
    assert not re.search(r"""(src|href)\s*=\s*['"]?\s*(https?:)?//""", html, re.I)
    assert "Content-Security-Policy" in html

    shot = tmp_path / "trail.png"
    netlog = tmp_path / "netlog.json"
    r = _chromium(tmp_path, page, "--window-size=1100,1600", f"--screenshot={shot}", f"--log-net-log={netlog}")
    assert shot.exists() and shot.stat().st_size > 20_000, r.stderr[-2000:]
    # the net log lists every request; the page (a file: origin, "null") asked for nothing over the network
    assert _page_requests(netlog) == []
    # ... and the check can fail: a page without the CSP that loads an image shows up
    control = tmp_path / "control.html"
    control.write_text("<!doctype html><img src='http://127.0.0.1:9/x.png'>")
    control_log = tmp_path / "control-netlog.json"
    _chromium(tmp_path, control, "--dump-dom", f"--log-net-log={control_log}")
    assert _page_requests(control_log) == ["http://127.0.0.1:9/x.png"]

    dom = _chromium(tmp_path, page, "--dump-dom").stdout
    runs = re.findall(r'<section class="run" id="([^"]+)" data-run="([^"]+)"', dom)
    # --last 5: the five newest runs with a record, newest first
    assert [rid for _, rid in runs] == [
        "r-20261129-081500-i010",
        "r-20261129-081000-h009",
        "r-20261129-080000-g008",
        "r-20261129-075000-f007",
        "r-20261129-074000-e006",
    ]
    for anchor, _ in runs:
        assert f'href="#{anchor}"' in dom
    assert dom.count("<svg") == 5 and 'class="phase-bar"' in dom
    assert '<dd class="h-cluster">shine</dd>' in dom and '<dd class="h-run-by">oncall@ci-runner-7</dd>' in dom
    assert '<dd class="h-started">2026-11-29 07:50:00 UTC</dd>' in dom
    assert 'class="rollback-mark" data-kind="rollback_failed"' in dom and 'class="decision-mark"' in dom
    assert "container api exited with code 1" in dom  # the diagnosis, next to the failing step

    # one run's page: the traffic share and the escaped hostile text
    one = tmp_path / "one.html"
    cli = snail(
        tmp_path, "-f", str(pipeline), "trail", "--run", "r-20261129-071500-b002", "--format", "html", "-o", str(one)
    )
    assert cli.returncode == 0, cli.stderr
    dom = _chromium(tmp_path, one, "--dump-dom").stdout
    assert "&lt;script&gt;alert('x')&lt;/script&gt;" in dom and "<script>alert" not in dom
    assert dom.count('class="gate-tick"') == 4 and dom.count('class="attempt-tick"') == 10
    first = _pipeline_first_run_traffic(tmp_path, pipeline)
    assert 'class="traffic-step"' in first and "blue 90%, green 10%" in first


def _pipeline_first_run_traffic(tmp_path: Path, pipeline: Path) -> str:
    page = tmp_path / "first.html"
    cli = snail(
        tmp_path, "-f", str(pipeline), "trail", "--run", "r-20261129-070849-a001", "--format", "html", "-o", str(page)
    )
    assert cli.returncode == 0, cli.stderr
    return _chromium(tmp_path, page, "--dump-dom").stdout


def test_trail_json_and_last(tmp_path: Path) -> None:
    """`--output json trail --last 2` is one JSON document with the two newest runs and only their events."""
    pipeline = _pipeline(tmp_path)
    out = snail(tmp_path, "-f", str(pipeline), "--output", "json", "trail", "--last", "2", timeout=60)
    data = json.loads(out.stdout)
    assert [r["run_id"] for r in data["runs"]] == ["r-20261129-081500-i010", "r-20261129-081000-h009"]
    assert {e["run_id"] for e in data["events"]} == {"r-20261129-081500-i010", "r-20261129-081000-h009"}
    assert (data["cluster"], data["region"]) == ("shine", "us-east-1")


def test_history_lists_runs_newest_first_with_date_zone_and_who(tmp_path: Path) -> None:
    """`snail history -n 3`: the three newest runs, each with its start (date, seconds, zone), user@host, exit."""
    pipeline = _pipeline(tmp_path)
    out = snail(tmp_path, "-f", str(pipeline), "history", "-n", "3", timeout=60)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert [line.split()[0] for line in lines[:3]] == [
        "r-20261129-081500-i010",
        "r-20261129-081000-h009",
        "r-20261129-080000-g008",
    ]
    assert "2026-11-29 08:10:00 UTC  oncall@ci-runner-7" in lines[1] and "exit 3" in lines[1]
    assert "quarantined" in lines[0] and "exit 130" in lines[2] and lines[3].startswith("(newest first;")
