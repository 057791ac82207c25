"""The audit trail: one record per access, hash-chained so that tampering shows.

hash(n) = HMAC-SHA256(audit key, hash(n-1) hex + canonical JSON of record n without its
hash), with hash(0) = 64 zeros: without the audit key nobody can rewrite the chain and have
it verify. Chains written before the key existed are plain SHA-256 up to a boundary seq
(`keyed_from`); from there on every link is keyed. `verify` walks the chain and names the first record that does not
fit: edited (content no longer matches its hash), deleted (a gap in seq, or the tail cut
off, caught against the stored head), reordered (a record links to another one than the
record before it). No prompt content is ever part of a record; key secrets are redacted.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime

GENESIS = "0" * 64
_SECRET_RE = re.compile(r"sk-[A-Za-z0-9_-]{6,}")
# Retention purges cut the oldest records off the chain; the purge's own record (chained,
# so it cannot be altered) names the checkpoint (last purged seq + its hash) the chain
# now starts from, and verify() checks the stored checkpoint against it.
PURGE_ACTION = "retention.purge"
# Written by the store when it starts without a usable anchor (see audit_anchor.AuditAnchor).
ANCHOR_ACTION = "audit.anchor"
_CHECKPOINT_RE = re.compile(r"checkpoint seq=(\d+) hash=([0-9a-f]{64})")
# Client-chosen strings (model, request id, ...) are stored clipped to MAX_FIELD_CHARS
# characters (the reason, which may quote them, to MAX_REASON_CHARS), followed by a marker
# saying how much was cut: a 1 MB `model` costs a few hundred bytes of audit, not 1 MB.
MAX_FIELD_CHARS = 256
MAX_REASON_CHARS = 1024
_CLIPPED_FIELDS = ("request_id", "tenant", "key_id", "model", "action", "filter_verdict")


@dataclass(frozen=True, slots=True)
class AuditEntry:
    time: str
    request_id: str
    tenant: str
    key_id: str
    model: str
    action: str
    outcome: str
    status: int
    input_tokens: int = 0
    output_tokens: int = 0
    latency_ms: float = 0.0
    reason: str = ""
    filter_verdict: str = ""
    seq: int = 0
    prev_hash: str = ""
    hash: str = ""


@dataclass(frozen=True, slots=True)
class VerifyResult:
    ok: bool
    checked: int
    first_bad_seq: int = 0
    problem: str = ""
    start_seq: int = 0  # verified from this checkpoint (0: from the genesis)


def iso_time(ts: float) -> str:
    """UTC, millisecond precision, fixed width: sorts as text."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def redact(text: str) -> str:
    return _SECRET_RE.sub("sk-***", text)


def clip(text: str, limit: int = MAX_FIELD_CHARS) -> str:
    """`text` cut to `limit` characters plus a '…[+N chars]' marker when longer."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}…[+{len(text) - limit} chars]"


def clipped(entry: AuditEntry) -> AuditEntry:
    """The entry with every free-text field clipped (see MAX_FIELD_CHARS)."""
    changes = {f: clip(getattr(entry, f)) for f in _CLIPPED_FIELDS}
    return replace(entry, **changes, reason=clip(entry.reason, MAX_REASON_CHARS))


def canonical(entry: AuditEntry) -> bytes:
    content = asdict(entry)
    del content["hash"], content["prev_hash"]
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def checkpoint_reason(seq: int, hash_: str) -> str:
    return f"checkpoint seq={seq} hash={hash_}"


def parse_checkpoint(reason: str) -> tuple[int, str] | None:
    found = _CHECKPOINT_RE.search(reason)
    return (int(found.group(1)), found.group(2)) if found else None


def entry_hash(prev_hash: str, entry: AuditEntry, key: bytes | None = None) -> str:
    """The link hash: HMAC-SHA256 with the audit key, plain SHA-256 without (legacy part)."""
    data = prev_hash.encode() + canonical(entry)
    if key is None:
        return hashlib.sha256(data).hexdigest()
    return hmac.new(key, data, hashlib.sha256).hexdigest()


def chain(entry: AuditEntry, seq: int, prev_hash: str, key: bytes | None = None) -> AuditEntry:
    """The entry as the `seq`-th link after `prev_hash` (keyed when `key` is given)."""
    linked = replace(entry, seq=seq, prev_hash=prev_hash, hash="")
    return replace(linked, hash=entry_hash(prev_hash, linked, key))


def key_check(key: bytes) -> str:
    """A public fingerprint of the audit key: tells a wrong key from a tampered chain."""
    return hmac.new(key, b"llmaas/audit-key-check/v1", hashlib.sha256).hexdigest()[:16]


def verify(
    entries: Iterable[AuditEntry],
    head: tuple[int, str] | None = None,
    seq_of_hash: Callable[[str], int | None] = lambda _h: None,
    start: tuple[int, str] = (0, GENESIS),
    key: bytes | None = None,
    keyed_from: int = 1,
) -> VerifyResult:
    """Checks entries in seq order; `head` is the (seq, hash) stored with the last append,
    `start` the retention checkpoint the chain continues from (seq 0: the genesis).
    With `key`, records from seq `keyed_from` on must carry keyed (HMAC) links."""
    prev_seq, prev_hash = start
    checked = 0
    for e in entries:
        link_key = key if key is not None and e.seq >= keyed_from else None
        problem = _link_problem(e, prev_seq, prev_hash, seq_of_hash, link_key)
        if problem:
            return VerifyResult(False, checked, e.seq, problem, start[0])
        prev_seq, prev_hash, checked = e.seq, e.hash, checked + 1
    if head is not None and head != (prev_seq, prev_hash):
        return VerifyResult(
            False,
            checked,
            prev_seq + 1,
            f"deleted: the chain ends at seq {prev_seq} but the head says seq {head[0]}",
            start[0],
        )
    return VerifyResult(True, checked, start_seq=start[0])


def _link_problem(
    e: AuditEntry,
    prev_seq: int,
    prev_hash: str,
    seq_of_hash: Callable[[str], int | None],
    key: bytes | None = None,
) -> str:
    if e.seq != prev_seq + 1:
        return f"deleted: seq {prev_seq + 1}..{e.seq - 1} missing"
    if e.prev_hash != prev_hash:
        other = seq_of_hash(e.prev_hash)
        if other is not None and other != prev_seq:
            return f"reordered: links to seq {other} instead of seq {prev_seq}"
        return (
            f"chain broken: prev_hash does not match seq {prev_seq} (record replaced or rewritten)"
        )
    if not hmac.compare_digest(entry_hash(prev_hash, e, key), e.hash):
        why = " (or rewritten without the audit key)" if key is not None else ""
        return f"edited: content does not match its hash{why}"
    return ""
