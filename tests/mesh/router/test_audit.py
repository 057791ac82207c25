from __future__ import annotations

from dataclasses import replace

from mesh.router.audit import GENESIS, AuditEntry, chain, entry_hash, iso_time, redact, verify


def _chain(n: int) -> list[AuditEntry]:
    out, prev = [], GENESIS
    for i in range(1, n + 1):
        e = chain(
            AuditEntry(
                time=iso_time(1_767_225_600 + i),
                request_id=f"r{i}",
                tenant="t",
                key_id="key_a",
                model="m",
                action="chat.completions",
                outcome="ok",
                status=200,
                input_tokens=i,
                latency_ms=1.5,
            ),
            i,
            prev,
        )
        out.append(e)
        prev = e.hash
    return out


def _head(entries: list[AuditEntry]) -> tuple[int, str]:
    return entries[-1].seq, entries[-1].hash


def test_intact_chain_verifies() -> None:
    entries = _chain(5)
    assert entries[0].prev_hash == GENESIS and entries[1].prev_hash == entries[0].hash
    assert verify(entries, _head(entries)).ok
    assert verify(entries, _head(entries)).checked == 5
    assert verify([]).ok


def test_edited_record_is_named() -> None:
    entries = _chain(5)
    entries[2] = replace(entries[2], status=500)
    result = verify(entries, _head(entries))
    assert (result.ok, result.first_bad_seq, result.checked) == (False, 3, 2)
    assert result.problem.startswith("edited")


def test_rewritten_record_breaks_the_next_link() -> None:
    entries = _chain(5)
    forged = replace(entries[2], status=500)
    entries[2] = replace(forged, hash=entry_hash(forged.prev_hash, forged))
    result = verify(entries, _head(entries))
    assert result.first_bad_seq == 4 and "chain broken" in result.problem


def test_deleted_record_and_cut_tail() -> None:
    entries = _chain(5)
    result = verify(entries[:2] + entries[3:], _head(entries))
    assert result.first_bad_seq == 4 and result.problem.startswith("deleted")
    result = verify(entries[:3], _head(entries))
    assert result.first_bad_seq == 4 and "head says seq 5" in result.problem


def test_reordered_records() -> None:
    entries = _chain(5)
    # Swap the contents of seq 2 and 3 (each keeps its slot number).
    swapped = [entries[0], replace(entries[2], seq=2), replace(entries[1], seq=3), *entries[3:]]
    hashes = {e.hash: e.seq for e in entries}
    result = verify(swapped, _head(entries), hashes.get)
    assert result.first_bad_seq == 2 and result.problem.startswith("reordered")


def test_secrets_are_redacted_and_time_is_fixed_width() -> None:
    assert redact("bad key sk-llmaas-0123456789abcdef-XYZxyz") == "bad key sk-***"
    assert iso_time(1_767_225_600.5) == "2026-01-01T00:00:00.500Z"
