# make demo / make test / make lint / make bench. Everything installs what it needs first.
PYTHON ?= python3
# The CPU wheel of PyTorch; override (e.g. TORCH_SPEC=torch) for another build.
TORCH_SPEC ?= torch==2.13.0
STAMP := .make/installed

.PHONY: install demo test test-fast lint format bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -c "import torch" 2>/dev/null || $(PYTHON) -m pip install "$(TORCH_SPEC)"
	$(PYTHON) -m pip install -e ".[dev]"
	@mkdir -p $(@D) && touch $@

install: $(STAMP)

# The main job, offline, on the bundled data: forecast GOOG's daily close over 2012-13.
demo: $(STAMP)
	$(PYTHON) -m rnnkit demo

test: $(STAMP)
	$(PYTHON) -m pytest -n 2 -q

test-fast: $(STAMP)
	$(PYTHON) -m pytest -n 2 -q -m "not slow"

lint: $(STAMP)
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .

format: $(STAMP)
	$(PYTHON) -m ruff format .
	$(PYTHON) -m ruff check --fix .

# Layers against torch.nn and hand-written loops; then the tutorials' model against Keras 3
# (on JAX and torch, where installed: pip install keras jax).
bench: $(STAMP)
	$(PYTHON) -m benchmarks
	$(PYTHON) -m benchmarks seed-model

clean:
	rm -rf .make build dist src/*.egg-info .pytest_cache .ruff_cache
