"""The worker registry (which workers exist, what each serves) and the worker handle's state."""

from __future__ import annotations

from mesh.pb import common_pb2
from mesh.router.registry import DEFAULT_CAPACITY, WorkerRegistry


class FakeChannel:
    def __init__(self, address: str) -> None:
        self.address = address
        self.closed = False

    def unary_unary(self, *_args, **_kw) -> None:
        """The stub's methods are never called here: no RPC leaves these tests."""

    unary_stream = stream_unary = stream_stream = unary_unary

    async def close(self) -> None:
        self.closed = True


def serving(registry: WorkerRegistry, address: str, *models: str, context_length: int = 0):
    """Marks `address` healthy with `models` (what the monitor does after Info and health)."""
    handle = registry.get(address) or registry.admit(address)
    handle.models = {m: common_pb2.ModelInfo(id=m, context_length=context_length) for m in models}
    handle.is_healthy = True
    return handle


def test_static_addresses_get_one_handle_each_in_order():
    registry = WorkerRegistry(["b:1", "a:1", "b:1"], FakeChannel)
    assert [w.address for w in registry.workers()] == ["b:1", "a:1"]
    assert all(w.static and not w.in_rotation for w in registry.workers())
    assert registry.get("b:1").channel.address == "b:1" and registry.get("zz:1") is None


def test_admit_adds_an_announced_worker_and_readmits_a_withdrawn_one():
    registry = WorkerRegistry([], FakeChannel)
    handle = registry.admit("w:1", max_num_seqs=4)
    assert not handle.static and handle.capacity == 4
    serving(registry, "w:1", "m")
    assert registry.withdraw("w:1") is handle and handle.withdrawn and not handle.in_rotation
    again = registry.admit("w:1", max_num_seqs=8)
    # The same handle; the capacity the worker said itself is not overridden by a hint.
    assert again is handle and not handle.withdrawn and handle.in_rotation
    assert handle.capacity == 4 and handle.models  # healthy: its Info still holds


def test_readmitting_an_unhealthy_worker_asks_its_info_again():
    registry = WorkerRegistry([], FakeChannel)
    handle = serving(registry, "w:1", "m")
    handle.mark_failed("down")
    registry.admit("w:1")
    assert handle.models == {} and handle.down_since is None


def test_withdraw_of_an_unknown_address_is_none():
    assert WorkerRegistry([], FakeChannel).withdraw("nobody:1") is None


def test_only_workers_in_rotation_that_listed_the_model_are_candidates():
    registry = WorkerRegistry(["a:1", "b:1", "c:1"], FakeChannel)
    serving(registry, "a:1", "m", context_length=4096)
    serving(registry, "b:1", "m", "n", context_length=2048)
    serving(registry, "c:1", "m").mark_failed("probe failed")
    assert [w.address for w in registry.candidates("m")] == ["a:1", "b:1"]
    assert [w.address for w in registry.candidates("m", exclude=["a:1"])] == ["b:1"]
    assert registry.is_served("n") and not registry.is_served("zz")
    assert registry.knows("m") and not registry.knows("zz")
    assert registry.context_length("m") == 2048  # the smallest window in rotation
    assert registry.context_length("zz") == 0


def test_model_infos_merge_workers_and_say_whether_served():
    registry = WorkerRegistry(["a:1", "b:1"], FakeChannel)
    serving(registry, "a:1", "m", "gone").mark_failed("down")
    serving(registry, "b:1", "m")
    infos = registry.model_infos()
    assert set(infos) == {"m", "gone"}
    assert infos["m"].served and not infos["gone"].served


async def test_remove_forgets_the_worker_and_closes_its_channel():
    registry = WorkerRegistry(["a:1"], FakeChannel)
    channel = registry.get("a:1").channel
    assert (await registry.remove("a:1")) is not None and channel.closed
    assert registry.get("a:1") is None and await registry.remove("a:1") is None


async def test_close_closes_every_channel():
    registry = WorkerRegistry(["a:1", "b:1"], FakeChannel)
    await registry.close()
    assert all(w.channel.closed for w in registry.workers())


def test_a_failed_call_holds_the_worker_out_even_if_healthy_again():
    registry = WorkerRegistry([], FakeChannel)
    handle = serving(registry, "w:1", "m")
    handle.mark_failed("UNAVAILABLE", hold_s=3600)
    assert not handle.is_healthy and handle.down_since is not None
    handle.is_healthy = True  # the next probe passes: still held out
    assert not handle.in_rotation and not registry.is_served("m")


def test_forget_models_asks_info_again():
    registry = WorkerRegistry([], FakeChannel)
    handle = serving(registry, "w:1", "m")
    handle.forget_models()
    assert handle.models == {} and not handle.is_healthy and not registry.knows("m")


def test_load_and_room():
    handle = WorkerRegistry(["w:1"], FakeChannel).get("w:1")
    assert handle.capacity == DEFAULT_CAPACITY
    handle.max_num_seqs, handle.num_in_flight = 2, 1
    handle.num_running, handle.num_waiting = 3, 1
    assert handle.load == 4 and handle.has_room  # room counts the router's own in-flight
    handle.num_in_flight = 2
    assert not handle.has_room
