"""The edge's /metrics with several routers upstream (LLMAAS_ROUTERS=N): each router counts
its own requests, so their counters and histograms add up; a gauge every router reports
about the same worker keeps one value; the edge's own samples still win."""

from __future__ import annotations

from mesh.metrics_http import merge_texts

ROUTER_1 = """# TYPE llmaas_requests_total counter
llmaas_requests_total{model="m",status="200",tenant="a"} 3.0
# TYPE llmaas_request_duration_seconds histogram
llmaas_request_duration_seconds_bucket{model="m",le="1.0"} 2.0
llmaas_request_duration_seconds_bucket{model="m",le="+Inf"} 3.0
llmaas_request_duration_seconds_count{model="m"} 3.0
llmaas_request_duration_seconds_sum{model="m"} 2.5
# TYPE llmaas_worker_queue_depth gauge
llmaas_worker_queue_depth{model="m",worker="w1"} 4.0
"""
ROUTER_2 = (
    ROUTER_1.replace("} 3.0", "} 5.0")
    .replace("} 2.5", "} 4.5")
    .replace('le="1.0"} 2.0', 'le="1.0"} 1.0')
)


def samples(families) -> dict[tuple, float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families for s in f.samples}


def test_counters_and_histograms_of_several_routers_add_up_gauges_do_not():
    got = samples(merge_texts("", [ROUTER_1, ROUTER_2]))
    labels = (("model", "m"), ("status", "200"), ("tenant", "a"))
    assert got[("llmaas_requests_total", labels)] == 8.0
    assert got[("llmaas_request_duration_seconds_count", (("model", "m"),))] == 8.0
    assert got[("llmaas_request_duration_seconds_sum", (("model", "m"),))] == 7.0
    assert got[("llmaas_request_duration_seconds_bucket", (("le", "1.0"), ("model", "m")))] == 3.0
    assert got[("llmaas_worker_queue_depth", (("model", "m"), ("worker", "w1")))] == 4.0


def test_one_upstream_is_unchanged_and_local_samples_still_win():
    assert samples(merge_texts("", [ROUTER_1])) == samples(merge_texts("", [ROUTER_1, ""]))
    local = '# TYPE llmaas_requests_total counter\nllmaas_requests_total{model="m",status="200",tenant="a"} 1.0\n'
    got = samples(merge_texts(local, [ROUTER_1, ROUTER_2]))
    labels = (("model", "m"), ("status", "200"), ("tenant", "a"))
    assert got[("llmaas_requests_total", labels)] == 1.0
