"""Inference worker: model, tokenizer, KV cache and the step loop."""
