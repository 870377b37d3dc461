"""The code says what things are: no issue numbers in orchestrator/, no two-letter handles on the engine's objects."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "orchestrator"
ISSUE = re.compile(r"\bissues? ?#?\d+", re.I)
HANDLE = re.compile(r"\bself\.(p|e|j|ph|pp|dc|svc)\b")


def _hits(pattern: re.Pattern[str]) -> list[str]:
    found = []
    for path in sorted(ROOT.rglob("*.py")):
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if pattern.search(line):
                found.append(f"{path.relative_to(ROOT.parent)}:{n}: {line.strip()}")
    return found


def test_no_issue_numbers_in_the_product_code() -> None:
    """Comments and docstrings explain why in the code's own words; an issue number says nothing to a newcomer."""
    assert _hits(ISSUE) == []


def test_no_two_letter_handles() -> None:
    """Attributes say what they hold (self.pipeline, self.journal, self.spec), not self.p, self.j or self.svc."""
    assert _hits(HANDLE) == []
