"""Drives LLMEngine.step() on a dedicated thread and streams outputs to asyncio consumers.

torch releases the GIL inside its kernels, so the event loop stays responsive while the
engine thread computes. Outputs cross threads once per step (loop.call_soon_threadsafe).
Prompts are rendered and tokenised on a small pool of their own, never on the event loop,
which also answers health probes and load watches (the tokenizer releases the GIL).

A failed step drops the sequences it had (their callers get EngineFailed: UNAVAILABLE) and
the engine goes on with a fresh scheduler; after MAX_CONSECUTIVE_STEP_FAILURES failed steps
with no token computed between them, or a failed reset, the engine is down for good and
`on_fatal` is called (the worker then exits, see WorkerServer).

The engine thread also builds the engine (loads the model): it is the process's only thread
that runs torch kernels. Why: libgomp gives every thread that opens a parallel region its
own pool of OpenMP workers; once the main thread has one too, the process manages more
OpenMP threads than CPUs and libgomp cuts its spin-wait to ~100 spins, so the workers
sleep between kernels and every kernel pays a futex wake-up. Measured on 2 CPUs: a batch-1
decode step of SmolLM2-135M took 30-33 ms on a second thread against 17 ms on the only one.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from mesh.aio import wait_event
from worker.engine import LLMEngine, Prompt, TokenizedPrompt
from worker.errors import Draining, EngineFailed
from worker.outputs import StepOutput
from worker.sampling_params import SamplingParams

log = logging.getLogger(__name__)


class RequestStream:
    """One request's outputs. While the consumer is behind, new deltas of a choice merge
    into one (n > 1: one pending output per choice, handed out in the order they came)."""

    def __init__(self) -> None:
        self._pending: dict[int, StepOutput] = {}
        self._error: BaseException | None = None
        self._ready = asyncio.Event()
        self._done = asyncio.Event()  # the final output (or an error) is in

    def put(self, output: StepOutput) -> None:
        if (pending := self._pending.get(output.index)) is None:
            self._pending[output.index] = output
        else:
            pending.merge(output)
        self._ready.set()
        if output.is_finished:
            self._done.set()

    def fail(self, error: BaseException) -> None:
        self._error = error
        self._ready.set()
        self._done.set()

    async def get(self, hold_until: float = 0.0) -> StepOutput:
        """The merged deltas; with `hold_until` (loop time), not before then unless the
        request finishes first, so that more deltas merge into one message."""
        await self._ready.wait()
        delay = hold_until - asyncio.get_running_loop().time()
        if delay > 0 and not self._done.is_set():
            await wait_event(self._done, delay)
        if not self._pending and self._error is not None:
            raise self._error
        assert self._pending  # _ready is only set with an output or an error
        output = self._pending.pop(next(iter(self._pending)))
        if self._error is None and not self._pending:  # else stay ready: more to get
            self._ready.clear()
        return output


@dataclass(slots=True, frozen=True)
class LoadSnapshot:
    num_running: int
    num_waiting: int
    kv_cache_usage: float
    num_generated_tokens_total: int
    num_cancelled_total: int
    num_prefix_cache_hits_total: int
    num_requests_total: int


# Streams in flight from which each one's deltas are held for `stream_interval_s`.
COALESCE_FROM_STREAMS = 8
# Threads that render and tokenise prompts: bounded, so a burst of long prompts queues
# instead of taking every CPU from the engine thread.
TOKENIZE_THREADS = 2
# Steps that may fail with no token computed between them (each dropping its sequences)
# before the engine gives up: a persistent fault (a broken device) is not retried forever.
MAX_CONSECUTIVE_STEP_FAILURES = 3


class AsyncLLMEngine:
    def __init__(
        self,
        build_engine: Callable[[], LLMEngine],
        *,
        stream_interval_s: float = 0.0,
        on_fatal: Callable[[BaseException], None] | None = None,
    ) -> None:
        """Starts the engine thread, which calls `build_engine` (loads the model) and then
        waits for start(). Blocks until the engine is built; raises what building raised.

        stream_interval_s: with COALESCE_FROM_STREAMS or more requests in flight, a request's
        deltas go out at most this often (merged; its first token and its end at once). Each
        message costs CPU in every hop (worker, router, edge, client) that a busy engine
        would otherwise use: at 16 streams on 2 CPUs the mesh (edge + router + filter) cost
        17 % of the worker's direct throughput with a message per token, 4.5-9.7 % with
        100 ms (tools.bench_overhead). 0: every step's delta at once.

        on_fatal: called on the event loop once the engine is down for good."""
        self.stream_interval_s = stream_interval_s
        self.on_fatal = on_fatal
        self._failed_steps = 0  # in a row
        self._tokenize_pool = concurrent.futures.ThreadPoolExecutor(
            TOKENIZE_THREADS, thread_name_prefix="tokenize"
        )
        self.is_draining = False
        self._streams: dict[str, RequestStream] = {}
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._started = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._fatal: BaseException | None = None
        self._ids = itertools.count()
        built: concurrent.futures.Future[LLMEngine] = concurrent.futures.Future()
        self._thread = threading.Thread(
            target=self._run, args=(build_engine, built), name="llm-engine", daemon=True
        )
        self._thread.start()
        self.engine = built.result()

    @property
    def num_active(self) -> int:
        return len(self._streams)

    @property
    def is_failed(self) -> bool:
        """The engine is down for good (see MAX_CONSECUTIVE_STEP_FAILURES)."""
        return self._fatal is not None

    def start(self) -> None:
        """Binds the engine to the running event loop and lets the engine thread step."""
        self._loop = asyncio.get_running_loop()
        self._started.set()

    async def stop(self) -> None:
        self._stop.set()
        self._started.set()  # a thread never started must still see the stop
        self._wake.set()
        await asyncio.to_thread(self._thread.join)
        self._tokenize_pool.shutdown(wait=False, cancel_futures=True)

    async def tokenize(self, prompt: Prompt, max_tokens: int | None = None) -> TokenizedPrompt:
        """LLMEngine.tokenize_prompt on the tokenising pool. Raises RequestError."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._tokenize_pool, self.engine.tokenize_prompt, prompt, max_tokens
        )

    async def count_prompt_tokens(self, prompt: Prompt) -> tuple[int, int]:
        """LLMEngine.count_prompt_tokens on the tokenising pool."""
        tokenized = await self.tokenize(prompt)
        return len(tokenized.ids), tokenized.num_system_tokens

    async def generate(
        self, request_id: str, prompt: Prompt, params: SamplingParams, tenant: str = ""
    ) -> AsyncIterator[StepOutput]:
        """Yields deltas until the one with finish_reason (n > 1: until every choice's, the
        last one carrying the usage). Closing early aborts the request (every choice)."""
        self._check_accepting()
        # engine ids are unique even when callers reuse theirs
        request_id = f"{request_id}#{next(self._ids)}"
        tokenized = await self.tokenize(prompt, params.max_tokens)  # raises RequestError
        self._check_accepting()  # may have changed while tokenising
        # The stream exists before the engine thread can see the sequence (and step it).
        stream = self._streams[request_id] = RequestStream()
        try:
            self.engine.add_request(request_id, tokenized, params, tenant)
        except BaseException:
            del self._streams[request_id]
            raise
        self._wake.set()
        finished, unfinished = False, params.n
        hold_until, loop = 0.0, asyncio.get_running_loop()
        try:
            while not finished:
                output = await stream.get(hold_until)
                unfinished -= output.is_finished
                finished = not unfinished
                yield output
                busy = len(self._streams) >= COALESCE_FROM_STREAMS
                hold_until = loop.time() + self.stream_interval_s if busy else 0.0
        finally:
            del self._streams[request_id]
            if not finished:  # cancelled or closed early: free the slot within one step
                self.engine.abort(request_id)
                self._wake.set()

    def load(self) -> LoadSnapshot:
        scheduler, stats = self.engine.scheduler, self.engine.stats
        return LoadSnapshot(
            num_running=scheduler.num_running,
            num_waiting=scheduler.num_waiting,
            kv_cache_usage=scheduler.slots.num_used / scheduler.slots.num_slots,
            num_generated_tokens_total=stats.num_generated_tokens_total,
            num_cancelled_total=stats.num_cancelled_total,
            num_prefix_cache_hits_total=stats.num_prefix_cache_hits_total,
            num_requests_total=stats.num_requests_total,
        )

    async def wait_idle(self, timeout_s: float) -> bool:
        """Waits until no request is in flight; False when the timeout passed first."""
        deadline = time.monotonic() + timeout_s
        while self._streams and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        return not self._streams

    def _check_accepting(self) -> None:
        if self._fatal is not None:
            raise EngineFailed(f"the engine is down after {type(self._fatal).__name__}")
        if self.is_draining:
            raise Draining()

    # -- the engine thread -------------------------------------------------------------

    def _run(
        self,
        build_engine: Callable[[], LLMEngine],
        built: concurrent.futures.Future[LLMEngine],
    ) -> None:
        try:
            built.set_result(build_engine())
        except BaseException as exc:  # handed to the constructor, which raises it
            built.set_exception(exc)
            return
        self._started.wait()
        self._drive()

    def _drive(self) -> None:
        while not self._stop.is_set():
            if not self.engine.has_unfinished():
                self._wake.wait(timeout=0.5)
                self._wake.clear()
                continue
            try:
                outputs = self.engine.step()
            except Exception as exc:
                log.exception("engine step failed")
                if not self._recover(exc):
                    return
                continue
            except BaseException as exc:  # KeyboardInterrupt, SystemExit: down at once
                self._go_down(exc)
                return
            if any(output.num_tokens for output in outputs):  # a forward worked
                self._failed_steps = 0
            if outputs:
                self._call_in_loop(self._dispatch, outputs)

    def _recover(self, exc: Exception) -> bool:
        """Drops the failed step's sequences and goes on -> False when the engine is down
        (too many failed steps in a row, or the reset itself failed)."""
        self._failed_steps += 1
        if self._failed_steps >= MAX_CONSECUTIVE_STEP_FAILURES:
            log.critical("%d engine steps failed in a row: the engine is down", self._failed_steps)
            self._go_down(exc)
            return False
        try:
            dropped = self.engine.reset()
        except Exception as reset_exc:
            log.exception("resetting the engine after a failed step failed")
            self._go_down(reset_exc)
            return False
        log.warning("engine reset after a failed step: %d sequences dropped", len(dropped))
        self._call_in_loop(self._fail_requests, dropped, exc)
        return True

    def _go_down(self, exc: BaseException) -> None:
        self._fatal = exc
        self._call_in_loop(self._fail_all, exc)

    def _call_in_loop(self, callback: Callable[..., None], *args: object) -> None:
        assert self._loop is not None  # set by start()
        try:
            self._loop.call_soon_threadsafe(callback, *args)
        except RuntimeError:  # the loop is closed: nobody is listening any more
            self._stop.set()

    def _dispatch(self, outputs: list[StepOutput]) -> None:
        for output in outputs:
            stream = self._streams.get(output.request_id)
            if stream is not None:
                stream.put(output)

    def _fail_requests(self, request_ids: list[str], error: BaseException) -> None:
        for request_id in request_ids:
            if (stream := self._streams.get(request_id)) is not None:
                stream.fail(EngineFailed(type(error).__name__))

    def _fail_all(self, error: BaseException) -> None:
        for stream in self._streams.values():
            stream.fail(EngineFailed(type(error).__name__))
        if self.on_fatal is not None:
            self.on_fatal(error)
