"""The README's command list names every command `snail --help` lists, each with an example line."""

from __future__ import annotations

import re
from pathlib import Path

from orchestrator.cli.main import COMMANDS

README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_command_has_an_example_in_the_readme() -> None:
    """Each top-level command starts at least one line of the README's command block (`snail CMD ...`)."""
    text = README.read_text()
    block = text.split("## Commands", 1)[1].split("### Exit codes", 1)[0]
    examples = set(re.findall(r"^snail (?:--sandbox )?([a-z-]+)", block, flags=re.M))
    assert set(COMMANDS) - examples == set()
