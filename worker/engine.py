"""LLMEngine: the synchronous loop: schedule -> run -> postprocess.

Thread-safe by construction: add_request and abort only validate and post to inboxes;
every change to the scheduler happens inside step(), on the thread that drives it.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Mapping
from collections.abc import Sequence as SequenceOf
from dataclasses import dataclass
from typing import Any, Protocol

import torch

from worker.choices import ChoiceGroups, check_choices, fork_choices, make_choices
from worker.config import WorkerConfig
from worker.context_window import ContextWindow
from worker.errors import ContextLengthExceeded, InvalidRequest
from worker.grammar import GrammarCache
from worker.loader import LoadedModel, load_model
from worker.logprobs import TokenLogprobs
from worker.memory_plan import plan_kv_cache
from worker.model_runner import ModelRunner
from worker.outputs import StepOutput
from worker.reasoning import ReasoningSplitter, is_thinking_model, prompt_opens_think
from worker.sampler import Sampler
from worker.sampling_params import SamplingParams
from worker.scheduler import PrefillChunk, ScheduledBatch, Scheduler, padding_groups
from worker.sequence import FinishReason, Sequence
from worker.stop import StopChecker
from worker.template_switches import render_kwargs
from worker.tokenizer import IncrementalDetokenizer, Tokenizer

__all__ = [
    "ContextLengthExceeded",
    "EngineStats",
    "LLMEngine",
    "Prompt",
    "TokenizedPrompt",
    "padding_groups",
]

# Raw text (tokenised as is), chat messages (templated), or token ids.
Prompt = str | SequenceOf[Mapping[str, Any]] | list[int]


class Runner(Protocol):
    num_slots: int
    max_model_len: int

    def prefill_batch(
        self, slots: list[int], token_ids: list[list[int]], start_pos: list[int]
    ) -> torch.Tensor: ...
    def decode(
        self, slots: list[int], token_ids: list[int], positions: list[int]
    ) -> torch.Tensor: ...
    def copy_prefix(self, src_slot: int, dst_slot: int, num_tokens: int) -> None: ...


@dataclass(slots=True, frozen=True)
class TokenizedPrompt:
    """A prompt after tokenize_prompt (which may run on any thread)."""

    ids: list[int]
    num_system_tokens: int


@dataclass(slots=True)
class EngineStats:
    num_requests_total: int = 0
    num_generated_tokens_total: int = 0
    num_cancelled_total: int = 0
    num_prefix_cache_hits_total: int = 0


class LLMEngine:
    def __init__(
        self,
        runner: Runner,
        tokenizer: Tokenizer,
        eos_token_ids: SequenceOf[int],
        *,
        max_prefill_tokens: int = 2048,
        max_prefill_chunk: int | None = 512,
        seed: int | None = None,
        enable_prefix_reuse: bool = True,
        thinking: bool | None = None,
    ) -> None:
        """max_prefill_tokens / max_prefill_chunk: prompt tokens per step / per sequence and
        step while others decode (see worker/scheduler.py; None: no per-sequence bound).
        thinking: split `<think>` reasoning from the answer (None: detect it from the
        tokenizer's vocabulary and chat template)."""
        self.runner = runner
        self.tokenizer = tokenizer
        self.thinking = detect_thinking(tokenizer) if thinking is None else thinking
        self.eos_token_ids = tuple(eos_token_ids)
        self.window = ContextWindow(runner.max_model_len)  # the KV cache's length
        self._scheduler_args = (
            runner.num_slots,
            max_prefill_tokens,
            enable_prefix_reuse,
            max_prefill_chunk,
        )
        self.scheduler = Scheduler(*self._scheduler_args)
        self.sampler = Sampler(seed)
        self.stats = EngineStats()
        self._new: queue.SimpleQueue[list[tuple[Sequence, StopChecker]]] = queue.SimpleQueue()
        self._aborts: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._stop_checkers: dict[tuple[str, int], StopChecker] = {}  # (request id, choice)
        self._groups = ChoiceGroups()  # n > 1
        # the logits' width (a model may pad its vocabulary past the tokenizer's)
        config = getattr(runner, "config", None)
        self.vocab_size: int | None = getattr(config, "vocab_size", None) or getattr(
            tokenizer, "vocab_size", None
        )
        self._grammars: GrammarCache | None = None

    @classmethod
    def from_config(cls, config: WorkerConfig) -> tuple[LLMEngine, LoadedModel]:
        """Loads the model and sizes the KV cache from the config."""
        loaded = load_model(config.model, config.torch_dtype, config.device)
        max_model_len = ContextWindow.of(config.max_model_len, loaded.context_length).length
        plan = plan_kv_cache(  # the slots the memory budget holds; refuses what cannot fit
            loaded,
            max_num_seqs=config.max_num_seqs,
            max_model_len=max_model_len,
            dtype=config.torch_dtype,
            budget=config.budget,
        )
        runner = ModelRunner(
            loaded.model,
            loaded.config,
            max_num_seqs=plan.num_slots,
            max_model_len=max_model_len,
            dtype=config.torch_dtype,
            device=config.device,
            kernels=loaded.kernels,
        )
        engine = cls(
            runner,
            loaded.tokenizer,
            loaded.eos_token_ids,
            max_prefill_tokens=config.max_prefill_tokens,
            max_prefill_chunk=config.max_prefill_chunk,
            seed=config.seed,
        )
        return engine, loaded

    @property
    def context_length(self) -> int:
        return self.window.length

    @property
    def grammars(self) -> GrammarCache:
        """The compiled-grammar cache for constrained requests (built on first use, ~0.1 s;
        any thread: two first uses at once build two, one is kept)."""
        if self._grammars is None:
            self._grammars = GrammarCache.for_tokenizer(self.tokenizer, self.vocab_size)
        return self._grammars

    # -- any thread -------------------------------------------------------------------

    def add_request(
        self,
        request_id: str,
        prompt: Prompt | TokenizedPrompt,
        params: SamplingParams,
        tenant: str = "",
    ) -> Sequence:
        """Validates and queues; raises RequestError before anything is queued. A prompt
        not yet tokenised is tokenised here, on the calling thread (see tokenize_prompt)."""
        if not isinstance(prompt, TokenizedPrompt):
            prompt = self.tokenize_prompt(prompt, params.max_tokens)
        prompt_ids, num_system_tokens = prompt.ids, prompt.num_system_tokens
        max_tokens = self.window.max_tokens(len(prompt_ids), params.max_tokens)
        check_choices(params, self.vocab_size, self.runner.num_slots)
        seqs = make_choices(request_id, prompt_ids, params, max_tokens, tenant, num_system_tokens)
        # a constrained sequence ends where its grammar lets EOS through, ignore_eos or not
        ignore_eos = params.ignore_eos and params.grammar is None
        self._new.put(
            [(seq, self._checker(params, prompt_ids, max_tokens, ignore_eos)) for seq in seqs]
        )
        return seqs[0]

    def _checker(
        self, params: SamplingParams, prompt_ids: list[int], max_tokens: int, ignore_eos: bool
    ) -> StopChecker:
        return StopChecker(
            IncrementalDetokenizer(self.tokenizer),
            params.stop,
            self.eos_token_ids,
            ignore_eos,
            max_tokens,
            self._reasoning_splitter(prompt_ids),
        )

    def tokenize_prompt(self, prompt: Prompt, max_tokens: int | None = None) -> TokenizedPrompt:
        """Renders and tokenises `prompt`; any thread (it touches no engine state), so the
        worker runs it off its event loop. A prompt whose size in bytes alone proves it cannot
        fit (with max_tokens) is refused before it is tokenised. Raises RequestError."""
        ids, num_system_tokens = self._tokenize(prompt, max_tokens)
        return TokenizedPrompt(ids, num_system_tokens)

    def count_prompt_tokens(self, prompt: Prompt) -> tuple[int, int]:
        """-> (prompt tokens, system tokens) exactly as add_request would tokenise `prompt`;
        queues nothing. Raises RequestError for a prompt add_request would refuse (one that
        cannot fit the window even with one token to generate, among them)."""
        tokenized = self.tokenize_prompt(prompt)
        return len(tokenized.ids), tokenized.num_system_tokens

    def abort(self, request_id: str) -> None:
        """The sequence leaves (and frees its slot) at the start of the next step."""
        self._aborts.put(request_id)

    def has_unfinished(self) -> bool:
        return not (self._new.empty() and self._aborts.empty()) or self.scheduler.has_unfinished()

    def reset(self) -> list[str]:
        """After a failed step (the engine thread): drops every sequence, queued ones included,
        with a fresh scheduler (its slots and prefix cache forget KV a failed forward may have
        half written) -> the dropped request ids, whose callers must be told."""
        dropped = [seq.request_id for seq in self.scheduler.waiting]
        dropped += [seq.request_id for seq in self.scheduler.running]
        while not self._new.empty():
            dropped.append(self._new.get()[0][0].request_id)
        # queued aborts stay: one of a dropped id is a no-op, one of a newer request is not
        self.scheduler = Scheduler(*self._scheduler_args)
        self._stop_checkers.clear()
        self._groups.clear()
        return list(dict.fromkeys(dropped))

    # -- the engine thread -------------------------------------------------------------

    def step(self) -> list[StepOutput]:
        batch = self._schedule()
        logits = self._run(batch)
        return self._postprocess(batch, logits)

    def _schedule(self) -> ScheduledBatch:
        self._take_inboxes()
        batch = self.scheduler.schedule()
        for copy in self.scheduler.slots.take_copies():  # shared prefixes, before the forward
            self.runner.copy_prefix(copy.src, copy.dst, copy.length)
        now = time.monotonic()
        for chunk in batch.prefills:
            if chunk.seq.scheduled_at is None:
                chunk.seq.scheduled_at = now
        self.stats.num_prefix_cache_hits_total += sum(
            1 for chunk in batch.prefills if chunk.start and chunk.start == chunk.seq.num_cached
        )
        return batch

    @torch.inference_mode()
    def _run(self, batch: ScheduledBatch) -> torch.Tensor | None:
        """-> logits [N, V]: rows for prompts finished this step, then the decodes."""
        rows: list[torch.Tensor] = []
        if finished := self._prefill(batch.prefills) if batch.prefills else []:
            rows.append(torch.stack(finished))  # [n, V]
        if batch.decodes:
            slots = [seq.slot for seq in batch.decodes]
            token_ids = [seq.last_token_id for seq in batch.decodes]
            positions = [seq.num_tokens - 1 for seq in batch.decodes]
            rows.append(self.runner.decode(slots, token_ids, positions))  # [B, V]
        return torch.cat(rows) if rows else None

    def _postprocess(self, batch: ScheduledBatch, logits: torch.Tensor | None) -> list[StepOutput]:
        for chunk in batch.prefills:
            chunk.seq.num_computed = chunk.end
        for seq in batch.decodes:
            seq.num_computed = seq.num_tokens
        sampled = [chunk.seq for chunk in batch.prefills if chunk.is_last] + batch.decodes
        outputs = [self._cancelled_output(seq) for seq in batch.aborted]
        if logits is None:
            return outputs
        if forked := fork_choices(self.scheduler, sampled):  # n > 1: they share the logits row
            rows = [row for row, _ in forked]
            logits = torch.cat([logits, logits[rows]])
            sampled = sampled + [child for _, child in forked]
        token_ids, logprobs = self.sampler.sample(logits, sampled)
        for seq, token_id, entry in zip(sampled, token_ids, logprobs, strict=True):
            outputs.append(self._append_token(seq, token_id, entry))
        return outputs

    # -- helpers -----------------------------------------------------------------------

    def _prefill(self, chunks: list[PrefillChunk]) -> list[torch.Tensor]:
        """All of a step's prompt chunks in as few forwards as padding allows (one when their
        lengths are close) -> logits [V] of each chunk that ends its prompt, in `chunks` order."""
        rows: dict[int, torch.Tensor] = {}
        for group in padding_groups([chunk.end - chunk.start for chunk in chunks]):
            logits = self.runner.prefill_batch(
                [chunks[i].seq.slot for i in group],  # type: ignore[misc]  # admitted: has a slot
                [chunks[i].token_ids for i in group],
                [chunks[i].start for i in group],
            )  # [len(group), V]
            rows.update(zip(group, logits, strict=True))
        return [rows[i] for i, chunk in enumerate(chunks) if chunk.is_last]

    def _take_inboxes(self) -> None:
        while not self._new.empty():
            choices = self._new.get()
            for seq, checker in choices:
                self._stop_checkers[(seq.request_id, seq.index)] = checker
            self.scheduler.add(choices[0][0])  # the other choices fork from it
            self._groups.add([seq for seq, _ in choices])
            self.stats.num_requests_total += 1
        while not self._aborts.empty():
            if self.scheduler.abort(self._aborts.get()) is not None:
                self.stats.num_cancelled_total += 1

    def _append_token(
        self, seq: Sequence, token_id: int, logprobs: TokenLogprobs | None = None
    ) -> StepOutput:
        seq.append_token(token_id)
        self.stats.num_generated_tokens_total += 1
        key = (seq.request_id, seq.index)
        checker = self._stop_checkers[key]
        text, reasoning, finish_reason = checker.step(token_id, seq.num_output_tokens)
        seq.num_reasoning_tokens = checker.reasoning_tokens
        if seq.matcher is not None and finish_reason is None and seq.matcher.done_after(token_id):
            finish_reason = FinishReason.STOP  # the grammar is complete (or refused the token)
        output = StepOutput(
            seq.request_id, text, 1, finish_reason, reasoning_text=reasoning, index=seq.index
        )
        if logprobs is not None:
            output.logprobs.append(logprobs)
        if finish_reason is not None:
            self.scheduler.finish(seq, finish_reason)
            del self._stop_checkers[key]
            output.usage = self._groups.usage_of_last(seq)
            output.scheduled_at = seq.scheduled_at
        return output

    def _cancelled_output(self, seq: Sequence) -> StepOutput:
        self._stop_checkers.pop((seq.request_id, seq.index), None)
        usage = self._groups.usage_of_last(seq)
        return StepOutput(seq.request_id, "", 0, FinishReason.CANCELLED, usage, index=seq.index)

    def _reasoning_splitter(self, prompt_ids: list[int]) -> ReasoningSplitter | None:
        """A splitter per sequence of a thinking model; it starts inside reasoning when the
        prompt (chat template) already opened `<think>`."""
        if not self.thinking:
            return None
        prompt_text = self.tokenizer.decode(prompt_ids, skip_special_tokens=False)
        return ReasoningSplitter(start_in_reasoning=prompt_opens_think(prompt_text))

    def _tokenize(self, prompt: Prompt, max_tokens: int | None) -> tuple[list[int], int]:
        """-> (prompt ids, system tokens added by the chat template)."""
        if isinstance(prompt, str):
            if min_tokens := getattr(self.tokenizer, "min_tokens", None):
                num_bytes = len(prompt.encode("utf-8", "surrogatepass"))
                self.window.check_size(min_tokens(prompt), num_bytes, max_tokens)
            prompt_ids, num_system_tokens = self.tokenizer.encode(prompt), 0
            param = "prompt"
        elif prompt and isinstance(prompt[0], int):
            prompt_ids, num_system_tokens = list(prompt), 0  # type: ignore[arg-type]
            param = "prompt"
        else:
            prompt_ids, num_system_tokens = self._render_chat(prompt, max_tokens)  # type: ignore[arg-type]
            param = "messages"
        if not prompt_ids:
            raise InvalidRequest("The prompt is empty; send at least one token.", param=param)
        return prompt_ids, num_system_tokens

    def _render_chat(
        self, messages: SequenceOf[Mapping[str, Any]], max_tokens: int | None
    ) -> tuple[list[int], int]:
        if not messages:
            raise InvalidRequest("messages must contain at least one message.", "messages")
        check = {}
        if hasattr(self.tokenizer, "min_tokens"):
            check["check_size"] = lambda at_least, num_bytes: self.window.check_size(
                at_least, num_bytes, max_tokens
            )
        # template variables (tools=, chat_template_kwargs...) ride on the list
        # (worker.tool_prompt.TemplatedChat); a bad switch is refused naming its field
        extra = render_kwargs(messages, getattr(self.tokenizer, "template", None))
        try:
            return self.tokenizer.render_chat([dict(m) for m in messages], **check, **extra)
        except ContextLengthExceeded:
            raise
        except Exception as exc:  # the template rejects the conversation (jinja raise_exception)
            raise InvalidRequest(
                f"The chat template rejected the messages: {exc}", "messages"
            ) from exc


def detect_thinking(tokenizer: Any) -> bool:
    """A thinking model: `<think>`/`</think>` in the vocabulary or the chat template."""
    tok = getattr(tokenizer, "tok", None)  # the `tokenizers` object of worker.tokenizer
    vocab = tok.get_vocab(with_added_tokens=True) if tok is not None else None
    return is_thinking_model(vocab, getattr(tokenizer, "chat_template", None))
