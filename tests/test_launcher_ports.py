"""Free ports for test meshes (tools/launcher/ports.py): picked where no outgoing connection
takes its source port, and never handed out twice."""

from __future__ import annotations

from tools.launcher import ports


def test_free_ports_sit_below_the_ephemeral_range_and_are_distinct(monkeypatch, tmp_path):
    # A known range, whatever this machine's kernel says (or lacks): the test always runs.
    fake = tmp_path / "ip_local_port_range"
    fake.write_text("40000\t60999\n")
    monkeypatch.setattr(ports, "EPHEMERAL_RANGE", fake)
    monkeypatch.setattr(ports, "_handed_out", set())
    picked = [ports.free_port() for _ in range(50)]
    assert len(set(picked)) == len(picked)
    assert all(40000 - ports.PICK_SPAN <= p < 40000 for p in picked)


def test_without_a_known_range_the_kernel_picks(monkeypatch, tmp_path):
    monkeypatch.setattr(ports, "EPHEMERAL_RANGE", tmp_path / "missing")
    assert ports._pick_range() is None
    assert 0 < ports.free_port() < 65536
