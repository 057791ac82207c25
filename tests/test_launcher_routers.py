"""LLMAAS_ROUTERS=N in the launcher (no model, no processes): ports, metrics ports, names,
each router's environment, the shared LLMAAS_ROUTER_ADDRS, and readiness over every router."""

from __future__ import annotations

from pathlib import Path

from tools.launcher.children import child_env, commands, router_env
from tools.launcher.handle import MeshHandle
from tools.launcher.ports import plan_metrics_ports, plan_ports, port_plan, router_names


def test_default_ports_for_three_routers_sit_between_the_filter_and_the_workers():
    ports = plan_ports(2, None, True, {}, routers=3)
    assert ports.routers == [50051, 50053, 50054]
    assert ports.filter == 50052 and ports.workers == [50061, 50062]
    metrics = plan_metrics_ports(ports, True, {})
    assert {n: metrics[n] for n in router_names(3)} == {
        "router-1": 9101,
        "router-2": 9103,
        "router-3": 9104,
    }
    assert len(set(metrics.values())) == len(metrics)
    planned = {what: port for _, port, what, _ in port_plan(ports, metrics, {})}
    assert planned["router-3 gRPC"] == 50054 and planned["router-2 metrics"] == 9103


def test_one_router_keeps_its_old_name_and_ports():
    ports = plan_ports(1, None, True, {})
    assert ports.routers == [50051] and router_names(1) == ["router"]
    assert plan_metrics_ports(ports, True, {})["router"] == 9101
    assert "router" in commands(ports, "m")


def test_free_ports_are_distinct_for_every_router(tmp_path):
    ports = plan_ports(1, None, False, {}, routers=2)
    metrics = plan_metrics_ports(ports, False, {})
    used = [p for _, p, _, _ in port_plan(ports, metrics, {})]
    assert len(used) == len(set(used))
    assert [n for n in commands(ports, "m") if n.startswith("router")] == ["router-1", "router-2"]


def test_every_component_is_told_every_router(tmp_path):
    ports = plan_ports(1, None, False, {}, routers=2)
    env = child_env({"LLMAAS_ADMIN_KEY": "a", "LLMAAS_MESH_TOKEN": "t"}, ports, "m", "k", tmp_path)
    assert env["LLMAAS_ROUTER_ADDRS"] == ",".join(f"127.0.0.1:{p}" for p in ports.routers)


def test_routers_without_a_shared_database_keep_separate_stores(tmp_path: Path):
    own = router_env("router-2", 50053, {}, tmp_path)
    assert own == {
        "LLMAAS_ROUTER_PORT": "50053",
        "LLMAAS_ACCOUNTS_DB": str(tmp_path / "router-2" / "accounts.sqlite3"),
        "LLMAAS_CONTENT_DB": str(tmp_path / "router-2" / "content.sqlite3"),
    }
    shared = router_env("router-2", 50053, {"LLMAAS_DATABASE_URL": "postgresql://h/db"}, tmp_path)
    assert shared == {"LLMAAS_ROUTER_PORT": "50053"}
    assert router_env("router", 50051, {}, tmp_path) == {"LLMAAS_ROUTER_PORT": "50051"}


def test_ready_means_every_router_is_ready():
    ready = MeshHandle._all_routers_ready
    assert ready({"status": "ok"})  # one router: /health lists none
    assert ready({"routers": {"a": "SERVING", "b": "SERVING"}})
    assert not ready({"routers": {"a": "SERVING", "b": "unreachable (UNAVAILABLE)"}})


def test_the_banner_says_what_several_routers_share(tmp_path):
    from tools.run_mesh import _routers_line  # noqa: PLC0415 - the command module

    handle = MeshHandle("http://x", "k", plan_ports(1, None, True, {}, routers=2), tmp_path, "m")
    handle.launches["edge"] = ([], {}, tmp_path)
    assert "127.0.0.1:50051, 127.0.0.1:50053; each its own SQLite store" in _routers_line(handle)
    handle.launches["edge"] = ([], {"LLMAAS_DATABASE_URL": "postgresql://h/d"}, tmp_path)
    line = _routers_line(handle)
    assert "one PostgreSQL store; limits per router (set LLMAAS_REDIS_URL" in line
    one = MeshHandle("http://x", "k", plan_ports(1, None, True, {}), tmp_path, "m")
    assert _routers_line(one) == ""
