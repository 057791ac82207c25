"""Tokenizer, chat template and incremental detokeniser.

Built either from GGUF metadata (byte-level BPE, giving llama.cpp's ids) or from a Hugging
Face `tokenizer.json` (+ `tokenizer_config.json` for the chat template).
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from tokenizers import AddedToken, Regex, decoders, models, pre_tokenizers
from tokenizers import Tokenizer as HFTokenizer

from worker.chat_template import ChatTemplate
from worker.token_bounds import size_bound

GGUF_CONTROL, GGUF_USER_DEFINED = 3, 4
# tokenizer_config.json keys transformers hands the chat template (with bos/eos_token).
SPECIAL_TOKEN_KEYS = ("unk_token", "sep_token", "pad_token", "cls_token", "mask_token")

# llama.cpp's pre-tokeniser regexes (llama-vocab.cpp), keyed by `tokenizer.ggml.pre`.
_LLAMA3_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
_QWEN2_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
_SPLITS = {
    "llama3": _LLAMA3_SPLIT,
    "llama-bpe": _LLAMA3_SPLIT,
    "smaug-bpe": _LLAMA3_SPLIT,
    "qwen2": _QWEN2_SPLIT,
    "deepseek-r1-qwen": _QWEN2_SPLIT,
}
# These split every digit on its own, then apply the GPT-2 regex.
_DIGIT_SPLIT_PRE = {"smollm", "starcoder", "refact", "command-r", "codeshell", "exaone", "minerva"}


def _pre_tokenizer(pre: str) -> pre_tokenizers.PreTokenizer:
    if pre in _SPLITS:
        return pre_tokenizers.Sequence(
            [
                pre_tokenizers.Split(Regex(_SPLITS[pre]), behavior="isolated"),
                pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
            ]
        )
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    if pre in _DIGIT_SPLIT_PRE:
        return pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), byte_level])
    return byte_level  # "gpt2", "default" and unknown: the plain GPT-2 regex


class Tokenizer:
    """Encode/decode plus the model's chat template (HF `apply_chat_template` semantics)."""

    def __init__(
        self,
        tok: HFTokenizer,
        *,
        chat_template: str | Mapping[str, str] | None,
        bos_token: str | None,
        eos_token: str | None,
        eos_token_ids: Sequence[int],
        add_bos: bool = False,
        special_tokens: Mapping[str, str] | None = None,
    ) -> None:
        """special_tokens: the template variables named after special tokens (unk_token,
        pad_token...), beside bos_token / eos_token, as transformers passes them."""
        self.tok = tok
        self.bos_token, self.eos_token = bos_token, eos_token
        self.eos_token_ids = list(eos_token_ids)
        self.add_bos = add_bos
        self._special_tokens = dict(special_tokens or {})
        self.chat_template = chat_template
        # What a text's size proves about its token count (None: nothing sound).
        self.size_bound = size_bound(tok)
        self._plain_specials = _plain_special_ids(tok)
        self._digit_specials = any(c.isdigit() for s in self._plain_specials for c in s)
        self._special_re = (
            re.compile("|".join(re.escape(s) for s in sorted(self._plain_specials, key=len)[::-1]))
            if self._plain_specials
            else None
        )

    @property
    def chat_template(self) -> str | None:
        """The (default) chat template's text; set it to replace the template."""
        return self.template.source if self.template is not None else None

    @chat_template.setter
    def chat_template(self, source: str | Mapping[str, str] | None) -> None:
        specials = {
            **self._special_tokens,
            "bos_token": self.bos_token,
            "eos_token": self.eos_token,
        }
        self.template = ChatTemplate(source, specials) if source else None

    # construction

    @classmethod
    def from_gguf_fields(cls, meta: dict[str, Any]) -> Tokenizer:
        """From decoded GGUF metadata (`tokenizer.ggml.*`, `tokenizer.chat_template`)."""
        if meta.get("tokenizer.ggml.model") != "gpt2":
            raise ValueError(
                f"only byte-level BPE GGUF tokenizers are supported, "
                f"got {meta.get('tokenizer.ggml.model')!r}"
            )
        tokens: list[str] = meta["tokenizer.ggml.tokens"]
        types: list[int] = meta.get("tokenizer.ggml.token_type") or [1] * len(tokens)
        merges = [tuple(m.split(" ", 1)) for m in meta["tokenizer.ggml.merges"]]
        vocab = {t: i for i, t in enumerate(tokens)}
        tok = HFTokenizer(models.BPE(vocab=vocab, merges=merges, fuse_unk=False))
        tok.pre_tokenizer = _pre_tokenizer(meta.get("tokenizer.ggml.pre", "default"))
        tok.decoder = decoders.ByteLevel()
        # Control tokens (<|im_start|>, ...) are matched whole and hidden by skip_special_tokens.
        tok.add_special_tokens(
            [
                AddedToken(t, special=True, normalized=False)
                for t, ty in zip(tokens, types, strict=True)
                if ty == GGUF_CONTROL
            ]
        )
        tok.add_tokens(
            [
                AddedToken(t, special=False, normalized=False)
                for t, ty in zip(tokens, types, strict=True)
                if ty == GGUF_USER_DEFINED
            ]
        )
        bos, eos = meta.get("tokenizer.ggml.bos_token_id"), meta.get("tokenizer.ggml.eos_token_id")
        return cls(
            tok,
            chat_template=meta.get("tokenizer.chat_template"),
            bos_token=tokens[bos] if bos is not None else None,
            eos_token=tokens[eos] if eos is not None else None,
            eos_token_ids=[eos] if eos is not None else [],
            add_bos=bool(meta.get("tokenizer.ggml.add_bos_token", False)),
        )

    @classmethod
    def from_hf_dir(cls, path: str | Path, eos_token_ids: Sequence[int] = ()) -> Tokenizer:
        """From tokenizer.json and (optional) tokenizer_config.json / chat_template.jinja."""
        path = Path(path)
        tok = HFTokenizer.from_file(str(path / "tokenizer.json"))
        cfg_file = path / "tokenizer_config.json"
        cfg = json.loads(cfg_file.read_text()) if cfg_file.exists() else {}
        template = ChatTemplate.from_config(cfg.get("chat_template"))
        if (path / "chat_template.jinja").exists():
            template = (path / "chat_template.jinja").read_text()
        bos, eos = (_token_text(cfg.get(k)) for k in ("bos_token", "eos_token"))
        specials = {k: _token_text(cfg.get(k)) for k in SPECIAL_TOKEN_KEYS if cfg.get(k)}
        eos_ids = list(eos_token_ids)
        if eos is not None and tok.token_to_id(eos) is not None:
            eos_ids = list(dict.fromkeys([*eos_ids, tok.token_to_id(eos)]))
        add_bos = cfg.get("add_bos_token")
        if add_bos is None:  # no flag: does tokenizer.json's post-processor add BOS (Llama 3)?
            bos_id = tok.token_to_id(bos) if bos else None
            add_bos = bos_id is not None and tok.encode("a").ids[:1] == [bos_id]
        return cls(
            tok,
            chat_template=template,
            bos_token=bos,
            eos_token=eos,
            eos_token_ids=eos_ids,
            add_bos=bool(add_bos),
            special_tokens=specials,
        )

    def save_hf(self, path: str | Path) -> None:
        """Writes tokenizer.json and tokenizer_config.json (with the chat template)."""
        path = Path(path)
        self.tok.save(str(path / "tokenizer.json"))
        cfg = {
            "bos_token": self.bos_token,
            "eos_token": self.eos_token,
            "add_bos_token": self.add_bos,
            "chat_template": self.template.to_config() if self.template else None,
            "tokenizer_class": "PreTrainedTokenizerFast",
        }
        (path / "tokenizer_config.json").write_text(json.dumps(cfg, indent=2))

    # encode / decode

    @property
    def vocab_size(self) -> int:
        return self.tok.get_vocab_size(with_added_tokens=True)

    def encode(self, text: str, add_bos: bool | None = None) -> list[int]:
        """Raw text -> ids. Special-token text in `text` maps to the special ids, as llama.cpp does."""
        ids = self._encode_texts([text])[0]
        bos_id = self.tok.token_to_id(self.bos_token) if self.bos_token else None
        if (self.add_bos if add_bos is None else add_bos) and bos_id is not None:
            ids = [bos_id, *ids]
        return ids

    @property
    def max_token_bytes(self) -> int | None:
        """The most bytes of text one token stands for (None: no sound bound)."""
        return self.size_bound.per_token if self.size_bound else None

    def min_tokens(self, text: str) -> int:
        """A lower bound on len(encode(text)), without tokenising (0: no sound bound)."""
        return self._at_least([text], [])

    def _at_least(self, texts: list[str], plain: list[str]) -> int:
        """A lower bound on the tokens of `texts` (special-token text parsed) and `plain`
        (special-token text as plain text), one after the other."""
        if self.size_bound is None:
            return 0
        num_bytes = sum(len(t.encode("utf-8", "surrogatepass")) for t in texts + plain)
        digits = 0
        if self.size_bound.digits_alone:
            digits = sum(_ascii_digits(t) for t in texts + plain)
            if self._digit_specials and self._special_re is not None:  # "<|reserved_1|>"
                digits -= sum(_ascii_digits(m) for t in texts for m in self._special_re.findall(t))
        return self.size_bound.at_least(num_bytes, digits)

    def encode_plain(self, text: str) -> list[int]:
        """Text -> ids with special-token text (`<|im_start|>`) tokenised as the plain text it
        is, never as the special token: how a message's content is tokenised."""
        if self._special_re is None:
            return self._encode_texts([text])[0]
        return self._encode_segments(self._special_re.split(text), self._special_re.findall(text))

    def _encode_texts(self, texts: list[str]) -> list[list[int]]:
        """The one call into the Rust tokenizer. encode_batch releases the GIL (encode does
        not, in tokenizers 0.23), so other threads (the worker's event loop) keep running."""
        return [e.ids for e in self.tok.encode_batch(texts, add_special_tokens=False)]

    def _encode_segments(self, pieces: list[str], specials: Sequence[str]) -> list[int]:
        """pieces[0] specials[0] pieces[1] ...: pieces tokenised normally (one batch), each
        special as its plain-text ids."""
        encoded = iter(self._encode_texts([p for p in pieces if p]))
        ids: list[int] = []
        for i, piece in enumerate(pieces):
            if piece:
                ids += next(encoded)
            if i < len(specials):
                ids += self._plain_specials[specials[i]]
        return ids

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = True) -> str:
        return self.tok.decode(list(ids), skip_special_tokens=skip_special_tokens)

    # chat

    def apply_chat_template(
        self, messages: Sequence[dict[str, Any]], add_generation_prompt: bool = True, **kwargs: Any
    ) -> str:
        """transformers' rendering; kwargs are template variables (tools=, enable_thinking=)."""
        if self.template is None:
            raise ValueError("this model has no chat template")
        return self.template.render(messages, add_generation_prompt, **kwargs)

    def render_chat(
        self,
        messages: Sequence[dict[str, Any]],
        add_generation_prompt: bool = True,
        check_size: Callable[[int, int], None] | None = None,
        **template_kwargs: Any,
    ) -> tuple[list[int], int]:
        """-> (prompt ids, num_system_tokens). template_kwargs: extra template variables
        (enable_thinking=False, tools=[...]), as apply_chat_template takes them.

        The template's own markup keeps its special tokens; special-token text inside a
        message (`<|im_start|>system` in a user's content) is tokenised as plain text, so no
        one forges a role. `check_size(at_least, num_bytes)` sees a lower bound on the rendered
        prompt's tokens and its size in UTF-8 bytes before anything is tokenised (and may
        raise to refuse it).

        num_system_tokens counts the prompt tokens that are not the users' own words: template
        markup plus any default system prompt the template inserts. It is computed as
        total - sum(len(encode(content))) over the messages, each content tokenised alone. BPE
        merges at a content boundary can shift this by a token in rare cases; it is clamped to
        [0, total]. Simple and independent of any one template's layout.
        """
        marker = f"\ue000{secrets.token_hex(8)}:"  # unguessable: content cannot forge one
        found: list[str] = []
        text = self.apply_chat_template(
            [self._mark_specials(m, marker, found) for m in messages],
            add_generation_prompt,
            # template variables are request data too (tools=: names, descriptions, schemas)
            **self._marked(template_kwargs, marker, found),
        )
        parts = re.split(re.escape(marker) + "([0-9]+)\ue001", text)
        pieces, specials = parts[0::2], [found[int(i)] for i in parts[1::2]]
        if check_size is not None:
            num_bytes = sum(len(t.encode("utf-8", "surrogatepass")) for t in pieces + specials)
            check_size(self._at_least(pieces, specials), num_bytes)
        ids = self._encode_segments(pieces, specials)
        content = sum(len(self.encode_plain(_content_text(m))) for m in messages)
        return ids, min(len(ids), max(0, len(ids) - content))

    def _mark_specials(
        self, message: dict[str, Any], marker: str, found: list[str]
    ) -> dict[str, Any]:
        """The message with each special-token text in its content replaced by a numbered
        marker (its text in `found`), which render_chat tokenises as plain text; other fields
        (name, a tool call's arguments) and OpenAI content parts too."""
        return self._marked(message, marker, found)

    def _marked(self, value: Any, marker: str, found: list[str]) -> Any:
        """`value` with special-token text in its strings (nested too: a tool call's
        arguments, tools=) replaced by numbered markers (see _mark_specials)."""
        if self._special_re is None:
            return value
        if isinstance(value, str):

            def mark(match: re.Match[str]) -> str:
                found.append(match.group(0))
                return f"{marker}{len(found) - 1}\ue001"

            return self._special_re.sub(mark, value)
        if isinstance(value, dict):
            return {k: self._marked(v, marker, found) for k, v in value.items()}
        if isinstance(value, list):
            return [self._marked(v, marker, found) for v in value]
        return value


def _content_text(message: dict[str, Any]) -> str:
    content = message.get("content") or ""
    if isinstance(content, list):  # OpenAI content parts
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return str(content)


def _ascii_digits(text: str) -> int:
    return sum(text.count(d) for d in "0123456789")


def _plain_special_ids(tok: HFTokenizer) -> dict[str, list[int]]:
    """Each special token's text -> its ids as plain text (a copy of the tokenizer that does
    not match special tokens computes them once)."""
    specials = [t.content for t in tok.get_added_tokens_decoder().values() if t.special]
    if not specials:
        return {}
    plain = HFTokenizer.from_str(tok.to_str())
    plain.encode_special_tokens = True
    encoded = plain.encode_batch(specials, add_special_tokens=False)
    return {text: e.ids for text, e in zip(specials, encoded, strict=True)}


def _token_text(tok: Any) -> str | None:
    return tok.get("content") if isinstance(tok, dict) else tok


class IncrementalDetokenizer:
    """Turns a stream of token ids into text, emitting only complete, stable characters.

    The prefix/read-offset technique of vLLM and TGI: decode a small window of recent tokens
    with and without the new ones; emit the difference only when it does not end in U+FFFD
    (an unfinished UTF-8 sequence split across byte tokens, e.g. an emoji or CJK character).
    Re-decoding the window also gets context-dependent spacing right.
    """

    def __init__(self, tokenizer: Tokenizer, skip_special_tokens: bool = True) -> None:
        self.tokenizer = tokenizer
        self.skip_special_tokens = skip_special_tokens
        self.ids: list[int] = []
        self.prefix_offset = 0
        self.read_offset = 0
        self.text = ""

    def add(self, token_id: int) -> str:
        """Feeds one token; returns the newly completed text (maybe "")."""
        self.ids.append(token_id)
        decode = self.tokenizer.decode
        prefix = decode(self.ids[self.prefix_offset : self.read_offset], self.skip_special_tokens)
        full = decode(self.ids[self.prefix_offset :], self.skip_special_tokens)
        if len(full) <= len(prefix) or full.endswith("\ufffd"):
            return ""  # incomplete character (or a skipped special token): hold back
        delta = full[len(prefix) :]
        self.prefix_offset, self.read_offset = self.read_offset, len(self.ids)
        self.text += delta
        return delta
