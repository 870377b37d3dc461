"""Time is injected at the CLI: the engine a command gets runs on the application context's clock."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from orchestrator.aws.session import AwsContext
from orchestrator.cli.app import App
from orchestrator.clock import FakeClock, SystemClock


def test_the_engine_runs_on_the_clock_the_cli_context_holds(make_pipeline: Callable[..., Path]) -> None:
    """`App.engine()` hands the engine the context's clock (a SystemClock unless a caller set another), so no
    engine makes its own; a caller's clock (the fleet's interruptible one) still wins."""
    app = App(file=str(make_pipeline()), region="us-east-1")
    app._aws = AwsContext(region="us-east-1")  # no reachability probe: nothing here calls AWS
    assert isinstance(app.clock, SystemClock)
    app.clock = FakeClock()
    assert app.engine().clock is app.clock
    own = FakeClock()
    assert app.engine(clock=own).clock is own
