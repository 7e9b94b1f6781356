# One-command entry points. Each target creates .venv on first use and installs
# the pinned dependencies (requirements/constraints.txt, torch 2.13.0).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup book book-outputs test test-fast bench notebooks clean

$(STAMP): pyproject.toml requirements/constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c requirements/constraints.txt -e ".[notebooks,book,dev]"
	touch $(STAMP)

setup: $(STAMP)

## The main job: execute the notebooks on the embedded data and build the book.
book: $(STAMP)
	$(BIN)/python scripts/story_figure.py book/_static/story.png
	$(BIN)/jupyter-book build --warningiserror --keep-going book

## The book from the outputs stored in the notebooks, executing nothing (seconds, not minutes):
## book/_config.outputs.yml (git-ignored) is book/_config.yml with execute_notebooks "off".
## `make test` checks these pages in the browser while nbval, in the same run, checks that
## executing the notebooks reproduces the stored outputs they show.
OUTPUTS_CONFIG := book/_config.outputs.yml
book-outputs: $(STAMP)
	$(BIN)/python scripts/story_figure.py book/_static/story.png
	sed 's/^\(  *execute_notebooks:\) *cache *$$/\1 "off"/' book/_config.yml > $(OUTPUTS_CONFIG)
	@test "$$(grep -c 'execute_notebooks' $(OUTPUTS_CONFIG))" = 1 \
	  && grep -q '^  *execute_notebooks: "off"$$' $(OUTPUTS_CONFIG) \
	  || { echo "book-outputs: no 'execute_notebooks: cache' line in book/_config.yml to turn off" >&2; \
	       rm -f $(OUTPUTS_CONFIG); exit 1; }
	$(BIN)/jupyter-book build --warningiserror --keep-going --config $(OUTPUTS_CONFIG) book

## The whole test suite: unit tests, cross-tests, nbval over the notebooks (which executes every
## notebook once), and browser tests of the book built from the stored outputs and of JupyterLab
## (Debian's Chromium, installed by the script when root).
test: $(STAMP)
	scripts/install-browser.sh
	$(MAKE) book-outputs
	$(BIN)/python -m pytest tests notebooks

## The unit and cross-tests without the slow ones (marked slow): no book, nbval or browser.
test-fast: $(STAMP)
	$(BIN)/python -m pytest tests -m "not slow"

## Speed benchmarks (ratios against baselines measured in the same run).
bench: $(STAMP)
	$(BIN)/python benchmarks/bench_partial_conv.py
	$(BIN)/python benchmarks/bench_reference.py
	$(BIN)/python benchmarks/bench_training.py
	$(BIN)/python benchmarks/bench_inference.py
	$(BIN)/python benchmarks/bench_inpaint_memory.py
	$(BIN)/python benchmarks/bench_data.py

## Re-execute the notebooks in place so that their stored outputs (which nbval checks) are fresh.
notebooks: $(STAMP)
	$(BIN)/jupyter nbconvert --to notebook --execute --inplace notebooks/[0-9]*.ipynb

clean:
	rm -rf book/_build $(OUTPUTS_CONFIG)
