"""`${VAR}` interpolation in pipeline.yaml and phase files: one small parser, so every reference either
expands or is refused, never left half-read in a value.

- `${NAME}`: NAME's value; unset is a mistake (validate names it).
- `${NAME:-default}`: the default when NAME is unset or empty; the default may hold references itself
  (`${A:-${B}}`), read only when the default is used.
- `$${`: a literal `${` (as Docker Compose writes it).
- Anything else after `${` (`${1}`, `${A-x}`, `${A:?x}`, no closing `}`) is refused.
- The variables snail sets for a command gate when it runs (RUN_TIME_VARIABLES) are not the runner's to give at
  load time: in a command gate's `run:`, `env:` and `cwd:` their references are kept as written and expanded when
  the gate runs, against the gate's own environment (as a shell would); anywhere else they are a mistake.

Values are text: an expanded value is a string whatever it looks like (`true`, `[a, b]`, `{x: 1}`), never YAML
read again.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

# What snail sets for a command gate at run time (orchestrator/gates/command.py builds them; a test holds the two
# lists together).
RUN_TIME_VARIABLES = frozenset(
    {"SNAIL_CLUSTER", "SNAIL_SERVICE", "SNAIL_REVISION", "SNAIL_PHASE", "SNAIL_ENDPOINT", "SNAIL_ENDPOINTS"}
)
MAX_NESTING = 8  # ${A:-${B:-${C}}} is plenty; a deeper nest is a mistake (and a recursion bomb)

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*", re.ASCII)
_SPECIAL = re.compile(r"[$}]")


class InterpolationError(ValueError):
    """A `${` that is not a reference snail reads; the message says what to write."""


def expand(
    text: str,
    env: Mapping[str, str],
    keep: frozenset[str] = frozenset(),
    keep_escapes: bool = False,
) -> tuple[str, list[str]]:
    """`text` with its references expanded from `env`, and the names that were needed but unset (in order).

    References to names in `keep` are left as written (defaults included); with `keep_escapes`, `$${` stays
    `$${` (for a second pass at run time). InterpolationError for a malformed reference."""
    if "$" not in text:
        return text, []
    missing: list[str] = []
    out, _ = _scan(text, 0, env, keep, keep_escapes, missing, 0, closing=False)
    return out, list(dict.fromkeys(missing))


def _scan(
    text: str,
    i: int,
    env: Mapping[str, str],
    keep: frozenset[str],
    keep_escapes: bool,
    missing: list[str],
    depth: int,
    closing: bool,
) -> tuple[str, int]:
    """Expand from `i` to the end (or, with `closing`, to the `}` that ends a default: its index is returned)."""
    out: list[str] = []
    n = len(text)
    while i < n:
        m = _SPECIAL.search(text, i)
        if m is None:
            out.append(text[i:])
            i = n
            break
        j = m.start()
        out.append(text[i:j])
        if text[j] == "}":
            if closing:
                return "".join(out), j
            out.append("}")
            i = j + 1
        elif text.startswith("$${", j):
            out.append("$${" if keep_escapes else "${")
            i = j + 3
        elif text.startswith("${", j):
            value, i = _reference(text, j, env, keep, keep_escapes, missing, depth)
            out.append(value)
        else:
            out.append("$")
            i = j + 1
    if closing:
        raise InterpolationError("a ${NAME:-default} has no closing '}'")
    return "".join(out), i


def _reference(
    text: str,
    start: int,
    env: Mapping[str, str],
    keep: frozenset[str],
    keep_escapes: bool,
    missing: list[str],
    depth: int,
) -> tuple[str, int]:
    """The value of the reference at `start` (which is `${`) and the index after its `}`."""
    m = _NAME.match(text, start + 2)
    if m is None:
        shown = text[start : start + 12]
        raise InterpolationError(
            f"{shown!r}…: after '${{' comes a variable name (write ${{NAME}} or ${{NAME:-default}}, or $${{ for a "
            "literal '${')"
        )
    name, j = m.group(), m.end()
    default: str | None = None
    needs: list[str] = []
    if text.startswith("}", j):
        end = j + 1
    elif text.startswith(":-", j):
        if depth >= MAX_NESTING:
            raise InterpolationError(f"defaults nested more than {MAX_NESTING} deep in ${{{name}:-…}}")
        default, k = _scan(text, j + 2, env, keep, keep_escapes, needs, depth + 1, closing=True)
        end = k + 1
    elif j >= len(text):
        raise InterpolationError(f"${{{name} has no closing '}}'")
    else:
        raise InterpolationError(
            f"${{{name}{text[j]}…: snail reads ${{{name}}} and ${{{name}:-default}} only (no shell operators; "
            "write $${ for a literal '${')"
        )
    if name in keep:
        return text[start:end], end
    value = env.get(name)
    if value:
        return value, end
    if default is not None:
        missing.extend(needs)
        return default, end
    if value is None:
        missing.append(name)
    return "", end
