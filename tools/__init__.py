"""Everything outside the product packages, split by audience:

ops/       shipped operator CLIs: admin (llmaas-admin), certs, cost_estimate, lifecycle_report
launcher/  the mesh launcher (start_mesh, Supervisor); `run_mesh.py` is its command
           (`make run`, llmaas-mesh)
bench/     benchmarks (`make bench`, `make bench-soak`, `python -m tools.bench.engine`)
dev/       dev and test harness (gen_protos for `make protos`, tiny model, OTLP sink, ...)
filter_*.py, train_filter.py, learned_bench.py, filter_data/: the security filter's tools.

The other top-level modules are aliases: old `python -m tools.X` commands that run the moved
module's `main`. Nothing in the packages imports them (tests/test_tools_layout.py).
"""
