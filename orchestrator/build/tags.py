"""Content tags: `<phase>-<12 hex>` from the build context's files, the Dockerfile name and the build args.

Same inputs, same tag, on any machine: a scheduled run with unchanged sources finds its tag already in the
registry and builds nothing. Files excluded by .dockerignore do not count (they are not sent to the build).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator, Mapping
from functools import lru_cache
from pathlib import Path

TAG_VERSION = b"snail-content-tag/1\0"  # bump when the recipe changes, so old tags are not reused


def content_tag(
    phase: str,
    context: Path,
    build_args: Mapping[str, str] | None = None,
    dockerfile: str | None = None,
    secret_names: tuple[str, ...] = (),
) -> str:
    """`<phase>-<12 hex>`: sha256 over the context's files (paths, modes, bytes), Dockerfile name, build args and
    the names of build secrets (never their values: a tag is public, and a secret's hash is not for publishing)."""
    context = Path(context)
    h = hashlib.sha256(TAG_VERSION)
    h.update(f"dockerfile={_dockerfile_name(context, dockerfile)}\0".encode())
    for key, value in sorted((build_args or {}).items()):
        h.update(f"arg={key}={value}\0".encode())
    for name in sorted(secret_names):
        h.update(f"secret={name}\0".encode())
    for rel in context_files(context, dockerfile):
        path = context / rel
        if path.is_symlink():
            h.update(f"link={rel}\0{os.readlink(path)}\0".encode())
            continue
        executable = os.access(path, os.X_OK)
        h.update(f"file={rel}\0x={int(executable)}\0size={path.stat().st_size}\0".encode())
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 16), b""):
                h.update(chunk)
    dockerfile_path = Path(dockerfile) if dockerfile else context / "Dockerfile"
    if dockerfile and not dockerfile_path.is_absolute():
        dockerfile_path = context / dockerfile_path
    if dockerfile_path.is_file() and not _inside(dockerfile_path, context):
        h.update(b"external-dockerfile\0" + dockerfile_path.read_bytes())
    return f"{_tag_safe(phase)}-{h.hexdigest()[:12]}"


def context_files(context: Path, dockerfile: str | None = None) -> list[str]:
    """Relative POSIX paths of the files Docker would send for this context, sorted.

    The Dockerfile the build names is always sent, even when .dockerignore excludes it (as docker-py does):
    a context shared by several phases can ignore `Dockerfile.*` so each tag covers only its own Dockerfile."""
    context = Path(context)
    rules = _dockerignore_rules(context)
    always = {"Dockerfile", ".dockerignore"}
    if dockerfile and (not Path(dockerfile).is_absolute() or _inside(Path(dockerfile), context)):
        always.add(_dockerfile_name(context, dockerfile))
    files = []
    for rel in _walk(context):
        if rel in always or not _ignored(rel, rules):
            files.append(rel)
    return sorted(files)


def _walk(root: Path) -> Iterator[str]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        base = Path(dirpath).relative_to(root)
        for name in sorted(filenames):
            yield (base / name).as_posix() if str(base) != "." else name
        # Symlinked directories are sent as links, not followed (as Docker does).
        for name in list(dirnames):
            if (Path(dirpath) / name).is_symlink():
                dirnames.remove(name)
                yield (base / name).as_posix() if str(base) != "." else name


def _dockerignore_rules(context: Path) -> list[tuple[bool, re.Pattern[str]]]:
    """(negated, regex) per .dockerignore line; the last matching rule wins, as in Docker."""
    path = context / ".dockerignore"
    if not path.is_file():
        return []
    rules = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = os.path.normpath(line.lstrip("!").strip()).lstrip("/")
        if pattern in ("", "."):
            continue
        rules.append((negated, _compile(pattern)))
    return rules


@lru_cache(maxsize=256)
def _compile(pattern: str) -> re.Pattern[str]:
    """Docker's pattern syntax (filepath.Match plus `**`) as a regex over relative POSIX paths."""
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            end = pattern.find("]", i + 1)
            if end == -1:
                out.append(re.escape(c))
            else:
                body = pattern[i + 1 : end]
                out.append("[" + ("^" + body[1:] if body.startswith("^") else body) + "]")
                i = end
        elif c == "\\" and i + 1 < len(pattern):
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out) + r"\Z")


def _ignored(rel: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    # A rule matching a parent directory excludes everything below it.
    parts = rel.split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    ignored = False
    for negated, regex in rules:
        if any(regex.match(c) for c in candidates):
            ignored = not negated
    return ignored


def _dockerfile_name(context: Path, dockerfile: str | None) -> str:
    """The Dockerfile as named relative to the context, so an absolute path does not make the tag machine-specific."""
    if not dockerfile:
        return "Dockerfile"
    path = Path(dockerfile)
    if path.is_absolute() and _inside(path, context):
        return path.resolve().relative_to(context.resolve()).as_posix()
    return path.as_posix() if not path.is_absolute() else path.name


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
        return True
    except ValueError:
        return False


def _tag_safe(phase: str) -> str:
    # Docker tags: [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}; 13 characters are ours.
    safe = re.sub(r"[^A-Za-z0-9_.-]", "-", phase).lstrip(".-") or "image"
    return safe[:115]
