"""Benchmarks (`make bench`, `make bench-soak`), one module each; `python -m tools.bench` is
the side-by-side comparison (`compare`).

load      the reusable streaming load generator and process-tree RSS sampling
compare   ours vs llama.cpp vs transformers (servers, hf_engine, report: its parts)
peers     builds / installs the peer servers
access    the access check's cost        overhead  edge+router vs a worker directly
fairness  the fair queue                 tracing   the cost of tracing
soak      hours of load: memory growth   engine    the torch engine alone (no gRPC)
The filter's benchmarks stay with the filter tools (tools/filter_bench.py, learned_bench.py).
"""
