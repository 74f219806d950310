# The README's two commands: `make up` starts Kommandant, `make test` runs the tests.
PYTHON ?= python3
VENV   ?= .venv
HOST   ?= 127.0.0.1
PORT   ?= 8000
BIN    := $(VENV)/bin
# PyTorch (for the local embedding model) comes from its CPU-only index: a plain `pip install torch` on
# Linux pulls several GB of CUDA packages. Set TORCH_INDEX to another index for a GPU build.
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
TORCH_VERSION ?= 2.13.0
STAMP  := $(VENV)/.installed

.PHONY: up test install lint format bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "Kommandant needs Python 3.11 or newer"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --retries 1 --timeout 10 \
		--extra-index-url $(TORCH_INDEX) "torch==$(TORCH_VERSION)"
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP) ## create .venv and install Kommandant with its test tools

up: $(STAMP) ## start the web chat on the embedded default (Ctrl-C stops it)
	$(BIN)/kommandant up --host $(HOST) --port $(PORT)

test: $(STAMP) ## install what pip cannot (espeak-ng, sox, chromium, MCP Inspector), run the whole test suite
	@bash scripts/test-setup.sh
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy settings.py assistant intents tools bus agents mcp_server voice storage embeddings connectors

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP) ## print the benchmarks' JSON
	@for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
