"""Verdict marks on AWS: every verdict is also written as resource tags on the task-definition revision itself,
so any checkout, CI runner or laptop with read access rebuilds which revisions passed, failed or are held.

The local store (SQLite or DynamoDB) keeps the journal of marks and is a cache of these tags. A mark read back
from AWS is trusted only if it verifies: `snail:content` must equal the content hash of the revision as ECS
describes it (revisions are immutable, so a copied or hand-edited "good" tag on another revision fails).

ECS has no batch describe for task definitions (DescribeTaskDefinition takes one revision). A sync is one
paginated ListTaskDefinitions (100 ARNs a page on AWS: which revisions are still ACTIVE) plus one paginated
tag:GetResources (every revision carrying a verdict, with its tags, ~40 a page), then one
DescribeTaskDefinition per marked revision whose tags say something the cache does not know (to verify it), a few
at a time. Without the tagging API (or when it is denied) every revision not cached yet is described instead.
A current cache costs two calls when forced, and none through ensure_synced when the live revision is cached."""

from __future__ import annotations

import hashlib
import json
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import structlog

from orchestrator import taskdef
from orchestrator.arns import short_name
from orchestrator.aws.ecs import family_of, revision_of
from orchestrator.aws.tagging import RevisionTags
from orchestrator.errors import AccessDenied, AwsError
from orchestrator.redact import mask_text
from orchestrator.state.base import VERDICTS, Mark, StateStore

TAG_VERDICT = "snail:verdict"
TAG_PHASE = taskdef.TAG_PHASE
TAG_SPEC = taskdef.TAG_SPEC
TAG_RUN = taskdef.TAG_RUN
TAG_DIGEST = taskdef.TAG_DIGEST
TAG_CONTENT = "snail:content"
TAG_GATES = "snail:gates"
TAG_AT = "snail:at"
TAG_LIVE = "snail:live-since"
TAG_REASON = "snail:reason"
TAG_BY = "snail:by"
TAG_PRIOR = "snail:prior"

# ECS tag values: at most 256 characters; letters, numbers and spaces representable in UTF-8, and + - = . _ : / @
TAG_VALUE_MAX = 256
_NOT_ALLOWED = re.compile(r"[^\w\s+\-=._:/@]")
DESCRIBE_WORKERS = 8  # describes in flight at once during a sync (boto3 clients are thread-safe)
RECENT = 50  # revisions a sync verifies at most (newest first), unless --full

log = structlog.get_logger(__name__)


# ---------------------------------------------------------------- values
def tag_value(text: str | None) -> str:
    """Text as an ECS tag value: characters ECS refuses become spaces, at most 256 characters."""
    clean = " ".join(_NOT_ALLOWED.sub(" ", text or "").split())
    return clean[:TAG_VALUE_MAX].rstrip()


def gates_hash(gates: list[dict[str, Any]]) -> str:
    """A stable short hash of the gate specs (their to_dict form) a revision was judged with."""
    if not gates:
        return ""
    return hashlib.sha256(json.dumps(gates, sort_keys=True, default=str).encode()).hexdigest()[:16]


def normal_form(definition: dict[str, Any]) -> dict[str, Any]:
    """A definition without what ECS fills in when it describes one (networkMode bridge, container cpu 0, essential
    true, tcp, a hostPort equal to the containerPort, empty lists), so a registered body and its description hash
    alike."""
    td = taskdef.strip_read_only(definition)
    if td.get("networkMode") == "bridge":
        td = {k: v for k, v in td.items() if k != "networkMode"}
    containers = []
    for cd in td.get("containerDefinitions", []):
        c = {k: v for k, v in cd.items() if not (k == "cpu" and str(v) == "0") and not (k == "essential" and v is True)}
        ports = []
        for pm in c.get("portMappings", []) or []:
            p = dict(pm)
            if p.get("protocol") == "tcp":
                p.pop("protocol")
            if "hostPort" in p and p["hostPort"] == p.get("containerPort"):
                p.pop("hostPort")
            ports.append(p)
        if ports:
            c["portMappings"] = ports
        containers.append(c)
    return {**td, "containerDefinitions": containers}


def content_hash(definition: dict[str, Any]) -> str:
    """What verification recomputes: the spec hash of the revision's normal form (tags are not part of it)."""
    return taskdef.spec_hash(normal_form(definition))


def mark_tags(mark: Mark) -> dict[str, str]:
    """The resource tags that carry a mark (every key written, empty when unknown, so no stale value survives);
    the reason is masked like every other output."""
    return {
        TAG_VERDICT: mark.verdict,
        TAG_PHASE: tag_value(mark.phase),
        TAG_SPEC: tag_value(mark.spec_hash),
        TAG_CONTENT: tag_value(mark.content_hash),
        TAG_GATES: tag_value(mark.gates_hash),
        TAG_AT: tag_value(mark.at),
        TAG_RUN: tag_value(mark.run_id),
        TAG_LIVE: tag_value(mark.live_since),
        TAG_REASON: tag_value(mask_text(mark.reason)),  # a gate's failure text can carry a URL's token
        TAG_BY: tag_value(mark.by),
        TAG_PRIOR: tag_value(mark.prior),
    }


def _image(definition: dict[str, Any], container: str | None) -> str:
    cds = definition.get("containerDefinitions", [])
    cd = next((c for c in cds if c.get("name") == container), cds[0] if cds else {})
    return str(cd.get("image", ""))


def read_mark(
    service: str, definition: dict[str, Any], tags: dict[str, str], container: str | None = None
) -> tuple[Mark | None, str | None]:
    """The mark a described revision carries, if it verifies: (mark, None); (None, why) for a mark that does not
    verify; (None, None) for a revision without a mark."""
    arn = definition.get("taskDefinitionArn", "")
    verdict = tags.get(TAG_VERDICT)
    if not verdict:
        return None, None
    short = short_name(arn)
    if verdict not in VERDICTS:
        return None, f"{short}: unknown verdict {verdict!r} in {TAG_VERDICT}: ignored"
    claimed = tags.get(TAG_CONTENT, "")
    actual = content_hash(definition)
    if not claimed:
        return None, f"{short}: {verdict!r} mark without {TAG_CONTENT}: cannot be verified, ignored"
    if claimed != actual:
        return None, (
            f"{short}: {verdict!r} mark does not match the revision's content ({TAG_CONTENT} {claimed}, the revision "
            f"hashes to {actual}): edited or copied by hand, ignored"
        )
    return (
        Mark(
            service=service,
            revision_arn=arn,
            phase=tags.get(TAG_PHASE, ""),
            verdict=verdict,
            spec_hash=tags.get(TAG_SPEC, ""),
            content_hash=claimed,
            gates_hash=tags.get(TAG_GATES, ""),
            at=tags.get(TAG_AT, ""),
            run_id=tags.get(TAG_RUN, ""),
            reason=tags.get(TAG_REASON, ""),
            live_since=tags.get(TAG_LIVE, ""),
            by=tags.get(TAG_BY, ""),
            prior=tags.get(TAG_PRIOR, ""),
            image=_image(definition, container),
            digest=tags.get(TAG_DIGEST) or None,
            source="aws",
            active=definition.get("status", "ACTIVE") != "INACTIVE",
        ),
        None,
    )


# ---------------------------------------------------------------- writing
class MarkWriter:
    """Writes marks for one run: the local store first (always kept), then the revision's tags on AWS.

    A refused TagResource never fails the run: `write` returns a warning naming the missing permission, once."""

    def __init__(self, revisions: RevisionTags, store: StateStore) -> None:
        self.revisions = revisions
        self.store = store
        self.warnings: list[str] = []
        self.api_calls = 0

    def write(self, mark: Mark, definition: dict[str, Any] | None = None) -> str | None:
        """Record a mark locally and tag its revision; `definition` is the revision as registered or described
        (without it, one DescribeTaskDefinition). Returns a warning the first time tagging is refused."""
        if mark.gates and not mark.gates_hash:
            mark.gates_hash = gates_hash(mark.gates)
        if not mark.content_hash:
            if definition is None:
                self.api_calls += 1
                definition, registered = self.revisions.describe(mark.revision_arn)
                # A hold on a revision without a mark: its registration tags still say which phase and spec it is.
                mark.phase = mark.phase or registered.get(TAG_PHASE, "")
                mark.spec_hash = mark.spec_hash or registered.get(TAG_SPEC, "")
            mark.content_hash = content_hash(definition)
        self.store.put_mark(mark)
        self.store.cache_revisions(mark.service, {mark.revision_arn: "ACTIVE"})
        try:
            self.api_calls += 1
            self.revisions.tag(mark.revision_arn, mark_tags(mark))
        except AwsError as exc:
            return self._warn(mark, exc)
        log.info("mark_written", revision=mark.short, verdict=mark.verdict, phase=mark.phase)
        return None

    def _warn(self, mark: Mark, exc: AwsError) -> str | None:
        denied = isinstance(exc, AccessDenied)
        key = "denied" if denied else exc.code
        log.warning("mark_not_tagged", revision=mark.short, verdict=mark.verdict, code=exc.code)
        if any(w.startswith(f"[{key}]") for w in self.warnings):
            return None
        family = family_of(mark.revision_arn)
        if denied:
            text = (
                f"[{key}] could not write the {mark.verdict!r} verdict on {mark.short} to AWS: ecs:TagResource was "
                f"denied. The run is recorded in the local state only, so other checkouts and CI runners will not "
                f"see it: allow ecs:TagResource on arn:aws:ecs:*:*:task-definition/{family}:*"
            )
        else:
            text = (
                f"[{key}] could not write the {mark.verdict!r} verdict on {mark.short} to AWS ({exc}); it is kept "
                "in the local state only"
            )
        self.warnings.append(text)
        return text


def probe_tagging(revisions: RevisionTags, revision_arn: str) -> tuple[bool | None, str]:
    """Whether ecs:TagResource is allowed on a revision, without changing anything: its own existing tags are
    written back unchanged (TagResource is idempotent). (True, how) allowed; (False, fix) denied; (None, why) not
    probed (a revision without tags). For `doctor`, which checks the permission before a run needs it."""
    _, tags = revisions.describe(revision_arn)
    if not tags:
        return None, f"{revision_arn.rsplit('/', 1)[-1]} has no tags to write back: ecs:TagResource not probed"
    key = TAG_PHASE if TAG_PHASE in tags else sorted(tags)[0]
    try:
        revisions.tag(revision_arn, {key: tags[key]})
    except AccessDenied:
        return False, (
            "ecs:TagResource is denied: verdict marks cannot be written to AWS, so other checkouts and CI runners "
            f"will not see them; allow ecs:TagResource on arn:aws:ecs:*:*:task-definition/{family_of(revision_arn)}:*"
        )
    return True, f"ecs:TagResource allowed on {revision_arn.rsplit('/', 1)[-1]} (its {key} tag written back unchanged)"


# ---------------------------------------------------------------- syncing
@dataclass
class SyncReport:
    """What a sync did: revisions listed and described, marks adopted, marks ignored (and why), API calls."""

    family: str
    synced: bool = True  # False: the cache was current and nothing was asked of AWS
    listed: int = 0
    described: int = 0
    adopted: list[str] = field(default_factory=list)  # 'family:N verdict'
    ignored: list[str] = field(default_factory=list)  # why each mark that did not verify was ignored
    deregistered: list[str] = field(default_factory=list)  # cached revisions no longer ACTIVE
    notes: list[str] = field(default_factory=list)
    api_calls: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON output."""
        return {
            "family": self.family,
            "synced": self.synced,
            "listed": self.listed,
            "described": self.described,
            "adopted": self.adopted,
            "ignored": self.ignored,
            "deregistered": self.deregistered,
            "notes": self.notes,
            "api_calls": self.api_calls,
            "seconds": round(self.seconds, 3),
        }

    def summary(self) -> str:
        """One paragraph for humans."""
        if not self.synced:
            return f"marks of {self.family}: cache current, nothing asked of AWS"
        lines = [
            f"marks of {self.family}: {self.listed} active revisions listed, {self.described} described, "
            f"{len(self.adopted)} marks adopted ({self.api_calls} API calls, {self.seconds:.2f}s)"
        ]
        lines += [f"  adopted: {a}" for a in self.adopted]
        lines += [f"  deregistered: {d} (never a rollback target)" for d in self.deregistered]
        lines += [f"  IGNORED: {i}" for i in self.ignored]
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def sync(
    store: StateStore,
    revisions: RevisionTags,
    service: str,
    family: str,
    *,
    full: bool = False,
    container: str | None = None,
    workers: int = DESCRIBE_WORKERS,
    recent: int = RECENT,
) -> SyncReport:
    """Rebuild the local marks from the revisions' tags, adopt those that verify, report those that do not, and
    flag cached revisions that were deregistered.

    With the tagging API (`revisions.batched`): list the family + read every verdict tag in pages of 100,
    then describe only the marked revisions whose tags say something the store does not know yet (a mark another
    checkout wrote is found even on a cached revision). Without one, or when tag:GetResources is denied: describe
    every revision not cached yet. At most the newest `recent` revisions are described; `full`: every (marked)
    revision, again."""
    started = time.perf_counter()
    report = SyncReport(family=family)
    active, pages = revisions.list_active(family)
    report.listed, report.api_calls = len(active), pages
    cached = store.cached_revisions(service)
    newest: dict[str, Mark] = {}
    for m in store.marks(service):
        newest.setdefault(m.revision_arn, m)
    tags_by_arn: dict[str, dict[str, str]] | None = None
    if revisions.batched:
        try:
            tags_by_arn, tag_pages = revisions.tagged(TAG_VERDICT, family)
            report.api_calls += tag_pages
        except AccessDenied as exc:
            report.notes.append(f"{exc}; describing every revision not cached instead (allow tag:GetResources)")
    if tags_by_arn is not None:
        listed = set(active)

        def stale(arn: str) -> bool:
            tags, known = tags_by_arn[arn], newest.get(arn)
            return known is None or (known.verdict, known.at) != (tags.get(TAG_VERDICT), tags.get(TAG_AT, ""))

        todo = [a for a in tags_by_arn if a in listed and (full or stale(a))]
    else:
        todo = [a for a in active if full or a not in cached]
    if not full and len(todo) > recent:
        # Verifying costs one describe per revision: the newest `recent` are what rollbacks and plans use.
        todo.sort(key=lambda a: revision_of(a) or 0, reverse=True)
        report.notes.append(
            f"{len(todo) - recent} older revisions not read yet (a sync verifies the newest {recent} unread ones; "
            "the next sync continues, `snail state sync --full` reads them all)"
        )
        todo = todo[:recent]
    known_marks = {(m.revision_arn, m.verdict, m.at) for m in newest.values()}
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        described = list(pool.map(revisions.describe, todo))
    report.described = len(described)
    report.api_calls += len(described)
    # With the tags in hand every listed revision is accounted for; without them, only what was described.
    statuses = {a: "ACTIVE" for a in active if a not in cached} if tags_by_arn is not None else {}
    for td, tags in sorted(described, key=lambda d: revision_of(d[0].get("taskDefinitionArn", "")) or 0):
        arn = td["taskDefinitionArn"]
        statuses[arn] = td.get("status", "ACTIVE")
        mark, problem = read_mark(service, td, tags, container)
        if problem:
            report.ignored.append(problem)
            log.warning("mark_ignored", reason=problem)
        if mark is not None and (mark.revision_arn, mark.verdict, mark.at) not in known_marks:
            store.put_mark(mark)
            report.adopted.append(f"{mark.short} {mark.verdict} ({mark.phase or '-'})")
    listed_now = set(active)
    for arn, status in cached.items():
        if status != "INACTIVE" and arn not in listed_now and family_of(arn) == family:
            statuses[arn] = "INACTIVE"
            report.deregistered.append(short_name(arn))
    if statuses:
        store.cache_revisions(service, statuses)
    report.seconds = time.perf_counter() - started
    log.info("marks_synced", **{k: v for k, v in report.to_dict().items() if k not in ("adopted", "ignored", "notes")})
    return report


def ensure_synced(
    store: StateStore,
    revisions: RevisionTags,
    service: str,
    family: str,
    *,
    live_revision: str | None = None,
    force: bool = False,
    container: str | None = None,
) -> SyncReport:
    """Sync when the cache is empty or behind; free when it is current.

    Behind = nothing cached yet, or the live revision (which the caller has already described) is not cached.
    So a scheduled no-op run adds no API call. `force` syncs anyway (a list and a GetResources call when current):
    use it before a deploy or a rollback, where another runner's newer marks matter more than two calls."""
    if not force:
        cached = store.cached_revisions(service)
        if cached and (live_revision is None or live_revision in cached):
            return SyncReport(family=family, synced=False)
    return sync(store, revisions, service, family, container=container)


def family_for(pipeline: Any, live_revision: str | None = None) -> str:
    """The task-definition family a pipeline registers into: the template's, else the live revision's, else the
    service name."""
    if pipeline.service.task_definition:
        fam = taskdef.load_template(pipeline.service.task_definition).get("family")
        if fam:
            return str(fam)
    if live_revision:
        return family_of(live_revision)
    return str(pipeline.service.name)
