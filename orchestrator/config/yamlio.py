"""Reading configuration files safely: regular files only, a size cap, strict UTF-8, bounded YAML.

validate must survive anything a repository can hold (a FIFO, /dev/zero, a symlink out of the tree, a binary,
UTF-16, a billion-laughs alias bomb, nesting 100k deep, `!!python/object`), so the file is opened without
blocking and checked with fstat before a byte is read, and YAML is composed here from libyaml's event stream
without recursion, with every bound enforced as the events arrive. Every refusal is a ConfigError naming the
file, the line and, where there is one, the key.
"""

from __future__ import annotations

import codecs
import gc
import os
import re
import stat
import unicodedata
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import SafeConstructor

from orchestrator.errors import ConfigError, ConfigErrors

MAX_BYTES = 1024 * 1024  # 1 MiB per file: a pipeline is a few KiB; this leaves room and keeps parsing well under 1 s
MAX_DEPTH = 64  # nesting levels; the deepest real pipeline is about 6
MAX_NODES = 100_000  # values after alias expansion (a billion-laughs file expands to 10^9)
PIPELINE_FILE = "pipeline.yaml"

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when available: about 10x faster
_STD = "tag:yaml.org,2002:"
_ALLOWED_TAGS = {_STD + t for t in ("str", "int", "float", "bool", "null", "seq", "map")}
_MERGE = _STD + "merge"
# C0 controls except tab/LF/CR, DEL, C1 controls, and the bidirectional overrides that hide text ("trojan source").
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
# What an error line must not carry raw: the above plus tab and line breaks (one mistake, one line).
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_BOMS = (
    (codecs.BOM_UTF32_LE, "UTF-32"),
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
)


def fail(path: str | Path, line: int | None, message: str, key: str | None = None) -> ConfigErrors:
    """One configuration error, ready to raise."""
    return ConfigErrors([ConfigError(str(path), line, message, key=key)])


def neutralise(text: str) -> str:
    """Make untrusted text safe to print on one terminal line: control, line-break and direction characters become
    \\xNN / \\uNNNN escapes."""
    return _UNPRINTABLE.sub(
        lambda m: repr(m.group())[1:-1] if ord(m.group()) < 0x100 else f"\\u{ord(m.group()):04x}", text
    )


def describe_char(ch: str) -> str:
    """U+001B (ESC) style name of a character, for messages."""
    names = {"\x00": "NUL", "\x1b": "ESC", "\x7f": "DEL"}
    name = names.get(ch) or unicodedata.name(ch, "control character")
    return f"U+{ord(ch):04X} ({name})"


# ---------------------------------------------------------------------------------------------------- files


def find_pipeline(start: Path | None = None) -> Path:
    """The nearest pipeline.yaml in `start` (default: the current folder) or a folder above it, as git finds .git."""
    try:
        here = (start or Path.cwd()).absolute()
    except OSError as exc:  # the current folder was deleted under us
        raise fail(
            PIPELINE_FILE, None, f"cannot tell the current folder ({exc.strerror}); give the file with -f PATH"
        ) from None
    for folder in (here, *here.parents):
        candidate = folder / PIPELINE_FILE
        if candidate.exists() or candidate.is_symlink():
            return candidate
    raise fail(
        PIPELINE_FILE,
        None,
        f"not found in {here} or any folder above it; give the file with -f PATH (or SNAIL_FILE=PATH)",
    )


def inside(path: Path, root: Path) -> bool:
    """True if `path`, with every symlink followed, lies within `root` (also resolved)."""
    try:
        Path(os.path.realpath(path)).relative_to(os.path.realpath(root))
    except ValueError:
        return False
    return True


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a named pipe (FIFO)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def read_bytes(path: Path, root: Path | None = None, limit: int = MAX_BYTES) -> bytes:
    """A regular file's bytes, refusing devices, FIFOs, sockets, folders, files over `limit` and symlinks out of `root`.

    The file is opened with O_NONBLOCK and checked with fstat before anything is read, so a FIFO never blocks
    and /dev/zero is never read.
    """
    if root is not None and not inside(path, root):
        target = os.path.realpath(path)
        raise fail(path, None, f"leads to {neutralise(target)}, outside the repository ({root}); refusing to read it")
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise fail(path, None, "file not found") from None
    except OSError as exc:
        raise fail(path, None, f"cannot read: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise fail(path, None, f"is {_kind(st.st_mode)}, not a regular file; refusing to read it")
        if st.st_size > limit:
            raise fail(path, None, f"is {st.st_size} bytes; the limit is {_human(limit)} per file")
        chunks: list[bytes] = []
        size = 0
        while size <= limit:
            chunk = os.read(fd, min(65536, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:
            raise fail(path, None, f"is larger than {_human(limit)}, the limit per file")
        return b"".join(chunks)
    finally:
        os.close(fd)


def _human(n: int) -> str:
    return f"{n // (1024 * 1024)} MiB" if n % (1024 * 1024) == 0 else f"{n} bytes"


def decode(data: bytes, path: str | Path) -> str:
    """Strict UTF-8 (a UTF-8 BOM is allowed); UTF-16/32 and binary files are named as such, with their line."""
    for bom, name in _BOMS:
        if data.startswith(bom):
            raise fail(path, 1, f"the file is {name}-encoded (byte-order mark); save it as UTF-8")
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    nul = data.find(b"\x00")
    if nul >= 0:
        line = data.count(b"\n", 0, nul) + 1
        # "a\x00b\x00" is UTF-16 without a BOM; anything else with NUL bytes is binary
        sample = data[:64]
        if len(sample) >= 4 and (
            sample[1::2].count(0) >= len(sample) // 4 or sample[0::2].count(0) >= len(sample) // 4
        ):
            raise fail(path, line, "the file looks UTF-16-encoded (NUL bytes between characters); save it as UTF-8")
        raise fail(path, line, "NUL character (U+0000): this looks like a binary file, not YAML")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise fail(path, line, f"not valid UTF-8 (byte 0x{data[exc.start]:02x}); save the file as UTF-8") from None
    m = _CONTROL.search(text)
    if m:
        line = text.count("\n", 0, m.start()) + 1
        raise fail(path, line, f"control character {describe_char(m.group())} is not allowed")
    return text


def read_text(path: Path, root: Path | None = None, limit: int = MAX_BYTES) -> str:
    """read_bytes + decode: the checked text of a configuration file."""
    return decode(read_bytes(path, root, limit), path)


# ---------------------------------------------------------------------------------------------------- YAML


class _Frame:
    """An open sequence or mapping while its events arrive."""

    __slots__ = ("anchor", "key", "node", "size")

    def __init__(self, node: yaml.CollectionNode, anchor: str | None) -> None:
        self.node = node
        self.anchor = anchor
        self.key: yaml.Node | None = None
        self.size = 1


def _shown_tag(tag: str) -> str:
    return "!!" + tag[len(_STD) :] if tag.startswith(_STD) else tag


def compose(text: str, path: str | Path) -> yaml.Node:
    """YAML text -> one node tree with line marks; unknown tags, deep nesting, alias bombs are ConfigErrors.

    Merge keys (`<<: *defaults`) are applied here, explicit keys winning, so the schema sees plain mappings.
    """
    loader = _Loader(text)
    stack: list[_Frame] = []
    anchors: dict[str, tuple[yaml.Node, int]] = {}
    open_anchors: set[str] = set()
    resolved: dict[tuple[str, Any], str] = {}
    root: yaml.Node | None = None
    root_size = 0

    def where() -> str | None:
        parts: list[str] = []
        for f in stack:
            if isinstance(f.node, yaml.SequenceNode):
                parts.append(f"[{len(f.node.value)}]")
            elif f.key is not None:
                name = str(f.key.value) if isinstance(f.key, yaml.ScalarNode) else "?"
                parts.append(("." if parts else "") + neutralise(name[:80]))
        joined = "".join(parts)
        return joined if len(joined) <= 120 else "…" + joined[-119:]

    def error(mark: Any, message: str) -> ConfigErrors:
        return fail(path, mark.line + 1 if mark is not None else None, message, key=where())

    def attach(node: yaml.Node, size: int, mark: Any) -> None:
        nonlocal root, root_size
        if not stack:
            root, root_size = node, size
            return
        top = stack[-1]
        top.size += size
        if top.size > MAX_NODES:
            raise error(
                mark, f"more than {MAX_NODES} values, counting what each alias expands to (an alias bomb?); refusing it"
            )
        parent = top.node
        if isinstance(parent, yaml.SequenceNode):
            parent.value.append(node)
        elif top.key is None:
            top.key = node
        else:
            parent.value.append((top.key, node))
            top.key = None

    gc_was_enabled = gc.isenabled()
    gc.disable()  # building many nodes triggers the cyclic GC over and over: 1 MiB takes 1 s with it, 0.3 s without
    try:
        loader.get_event()  # StreamStart
        if loader.check_event(yaml.StreamEndEvent):
            raise fail(path, None, "file is empty")
        loader.get_event()  # DocumentStart
        while True:
            ev: Any = loader.get_event()
            kind = type(ev)
            if kind is yaml.DocumentEndEvent:
                break
            tag = getattr(ev, "tag", None)
            if tag not in (None, "!") and tag not in _ALLOWED_TAGS:
                raise error(
                    ev.start_mark,
                    f"unknown tag {neutralise(_shown_tag(tag))[:80]} (snail reads plain YAML: no !Ref, !!python/…, !!binary)",
                )
            if kind is yaml.ScalarEvent:
                if tag in (None, "!"):
                    cache_key = (ev.value, ev.implicit)
                    tag = resolved.get(cache_key)
                    if tag is None:
                        tag = resolved[cache_key] = loader.resolve(yaml.ScalarNode, ev.value, ev.implicit)
                bad = _CONTROL.search(ev.value)
                if bad:
                    raise error(ev.start_mark, f"control character {describe_char(bad.group())} is not allowed")
                node: yaml.Node = yaml.ScalarNode(tag, ev.value, ev.start_mark, ev.end_mark, ev.style)
                if ev.anchor:
                    anchors[ev.anchor] = (node, 1)
                attach(node, 1, ev.start_mark)
            elif kind is yaml.AliasEvent:
                if ev.anchor in open_anchors:
                    raise error(ev.start_mark, f"alias *{neutralise(ev.anchor)} refers to its own parent (a loop)")
                if ev.anchor not in anchors:
                    raise error(
                        ev.start_mark,
                        f"alias *{neutralise(ev.anchor)} has no anchor &{neutralise(ev.anchor)} before it",
                    )
                target, size = anchors[ev.anchor]
                attach(target, size, ev.start_mark)
            elif kind in (yaml.SequenceStartEvent, yaml.MappingStartEvent):
                if len(stack) >= MAX_DEPTH:
                    raise error(ev.start_mark, f"nested deeper than {MAX_DEPTH} levels")
                if kind is yaml.SequenceStartEvent:
                    coll: yaml.CollectionNode = yaml.SequenceNode(
                        tag or _STD + "seq", [], ev.start_mark, None, ev.flow_style
                    )
                else:
                    coll = yaml.MappingNode(tag or _STD + "map", [], ev.start_mark, None, ev.flow_style)
                if tag == "!":
                    coll.tag = _STD + ("seq" if isinstance(coll, yaml.SequenceNode) else "map")
                stack.append(_Frame(coll, ev.anchor))
                if ev.anchor:
                    open_anchors.add(ev.anchor)
            elif kind in (yaml.SequenceEndEvent, yaml.MappingEndEvent):
                frame = stack[-1]
                frame.node.end_mark = ev.end_mark
                if isinstance(frame.node, yaml.MappingNode):
                    _merge(frame.node, error)
                if frame.anchor:
                    open_anchors.discard(frame.anchor)
                    anchors[frame.anchor] = (frame.node, frame.size)
                stack.pop()
                attach(frame.node, frame.size, frame.node.start_mark)
        if not loader.check_event(yaml.StreamEndEvent):
            ev = loader.get_event()  # the next document's start
            raise fail(path, ev.start_mark.line + 1, "more than one YAML document (---); a file holds one")
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = neutralise(str(exc.problem or exc.context or "bad YAML"))
        raise fail(path, mark.line + 1 if mark else None, f"YAML syntax error: {problem}", key=where()) from None
    except yaml.YAMLError as exc:  # libyaml reader errors (e.g. a character YAML forbids) carry no mark object
        raise fail(path, None, f"YAML error: {neutralise(str(exc))}") from None
    finally:
        if gc_was_enabled:
            gc.enable()
        loader.dispose()
    assert root is not None
    return root


def _merge(node: yaml.MappingNode, error: Any) -> None:
    """Apply `<<` merge keys in place: merged pairs first, explicit keys override them (YAML 1.1 merge)."""
    if not any(k.tag == _MERGE for k, _ in node.value):
        return
    explicit = [(k, v) for k, v in node.value if k.tag != _MERGE]
    names = {k.value for k, _ in explicit if isinstance(k, yaml.ScalarNode)}
    merged: list[tuple[yaml.Node, yaml.Node]] = []
    for k, v in node.value:
        if k.tag != _MERGE:
            continue
        sources = v.value if isinstance(v, yaml.SequenceNode) else [v]
        for src in sources:
            if not isinstance(src, yaml.MappingNode):
                raise error(src.start_mark, "a merge key << takes a mapping or a list of mappings")
            for mk, mv in src.value:
                name = mk.value if isinstance(mk, yaml.ScalarNode) else None
                if name is not None and name in names:
                    continue  # explicit keys win; earlier sources win over later ones
                names.add(name)
                merged.append((mk, mv))
    node.value = merged + explicit


def to_data(node: yaml.Node) -> Any:
    """A composed node as plain Python data (safe constructor: str, int, float, bool, None, list, dict)."""
    return SafeConstructor().construct_document(node)


def load(path: Path, root: Path | None = None) -> yaml.Node:
    """Read, check and compose one configuration file."""
    return compose(read_text(path, root), path)


def walk(node: yaml.Node, *keys: str) -> yaml.Node | None:
    """The node at a key path in a mapping tree (None if any step is missing)."""
    for key in keys:
        if not isinstance(node, yaml.MappingNode):
            return None
        found = next((v for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == key), None)
        if found is None:
            return None
        node = found
    return node


def line_of(node: yaml.Node | None) -> int | None:
    """1-based start line of a node (None for None)."""
    return node.start_mark.line + 1 if node is not None else None
