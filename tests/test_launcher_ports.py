"""Free ports for test meshes (tools/launcher/ports.py): picked where no outgoing connection
takes its source port, and never handed out twice."""

from __future__ import annotations

import pytest

from tools.launcher import ports


def test_free_ports_sit_below_the_ephemeral_range_and_are_distinct():
    span = ports._pick_range()
    if span is None:
        pytest.skip("no /proc/sys/net/ipv4/ip_local_port_range on this machine")
    picked = [ports.free_port() for _ in range(50)]
    assert len(set(picked)) == len(picked)
    assert all(span[0] <= p <= span[1] for p in picked)


def test_without_a_known_range_the_kernel_picks(monkeypatch, tmp_path):
    monkeypatch.setattr(ports, "EPHEMERAL_RANGE", tmp_path / "missing")
    assert ports._pick_range() is None
    assert 0 < ports.free_port() < 65536
