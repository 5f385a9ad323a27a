# Verbatim: `make run` installs and serves over seeds/; `make test` installs and runs the tests.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: run test install install-test browser ingest lint eval bench clean reliability

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

# The reader (fp32 and int8) and the query encoder in ONNX Runtime, exported from the weights
# (again when the export code changes, so a checkout never runs a stale graph).
ONNX   := models/reader/onnx/model.int8.onnx models/encoder-onnx/model.int8.onnx
ONNX_CODE := embeddings/onnx_export.py embeddings/onnx_encoder.py rag/readers/onnx_backend.py

$(ONNX) &: $(VENV)/.installed models/reader/model.safetensors $(ONNX_CODE)
	$(BIN)/verbatim export-onnx

install: $(VENV)/.installed $(ONNX)

install-test: $(VENV)/.installed-test $(ONNX) browser

## Debian's Chromium for the widget's browser tests (Playwright cannot download its own here).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends \
	    chromium fonts-dejavu-core >/dev/null; }

ingest: install
	$(BIN)/verbatim ingest

run: ingest
	$(BIN)/verbatim serve --host $(HOST) --port $(PORT)

# Floors sit just under the measured dev-set figures (README): a regression fails the build.
EVAL_FLOORS = --fail-under hit@5=0.97 --fail-under mrr=0.88 --fail-under em=0.91 \
              --fail-under f1=0.91 --fail-under citation=0.93 \
              --fail-under abstain_unanswerable=0.6

# The 10,000-chunk corpus of bench-scale (built once in .bench-scale/, about two minutes; measured
# 2026-12-05: hit@5 .5957, ask F1 .736); skipped, as the tests that need it, without the QA data.
SCALE_FLOORS = --fail-under hit@5=0.58 --fail-under ask_f1=0.70 --fail-under recall@10=0.95
QA_DATA = $(BIN)/python -c "from rag.config import get_settings; print(get_settings().qa_data_dir)"

test: install-test
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q
	$(BIN)/verbatim eval -q --out eval/out $(EVAL_FLOORS)
	@data=$$($(QA_DATA)); if [ -d "$$data" ]; then \
	  $(BIN)/verbatim bench-scale --chunks 10000 --json eval/out/scale-10000.json $(SCALE_FLOORS); \
	else echo "bench-scale skipped: no QA data in $$data (../shared/qa-data)"; fi

## The reliability suite, long form: schemathesis over 1,000+ requests, 20 SIGKILLs during
## document writes, 16 clients for 60 s, a hot swap under 8 clients for 30 s, the bad-input corpus
## and the XSS payloads; figures at the end.
## (make test runs its short form.)
reliability: install-test
	VERBATIM_RELIABILITY=long $(BIN)/python -m pytest -q -m reliability

lint: install-test
	$(BIN)/ruff check .

eval: install
	$(BIN)/verbatim eval --out eval/out

clean:
	rm -rf .index eval/out artifacts .pytest_cache .bench-scale
