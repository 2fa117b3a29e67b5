# Two commands do everything on a fresh machine: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STATE := .shifu
DEMO := $(STATE)/demo
MODELS := $(STATE)/models
TIERS := $(STATE)/tiers
REPORTS := $(STATE)/supply-demand
AUDIENCES := $(STATE)/audiences
PORT ?= 50051
DATA ?= ../shared/data
BENCH ?=  # `make bench BENCH=--quick`: every benchmark at its smaller sizes (python -m benchmarks --help)
PROTOS := $(wildcard proto/shifu/v1/*.proto)
PB := service/pb

.PHONY: run test bench lint proto demo train tiers docs clean

# The demo serves its audience set too (AudienceService, tag blocks of touchpoint rules, the console's page).
run: $(MODELS)/.trained $(TIERS)/.computed $(AUDIENCES)/.computed
	@echo "console on http://127.0.0.1:8080/"
	$(PY) -m service --model-dir $(MODELS) --tiers-dir $(TIERS) --audiences $(AUDIENCES) \
		--touchpoints $(DEMO)/touchpoints.toml --port $(PORT) --console-port 8080

test: $(VENV)/.installed $(VENV)/.spark $(PB)/.generated
	$(PY) -m pytest -q

bench: $(VENV)/.installed $(VENV)/.spark $(PB)/.generated
	$(PIP) install -q -e ".[dev,bench,spark]"
	$(PY) -m benchmarks --data $(DATA) $(BENCH)

lint: $(VENV)/.installed $(PB)/.generated
	$(PY) -m ruff check service models training tests benchmarks
	$(PY) -m ruff format --check service models training tests benchmarks
	$(PY) -m mypy

proto: $(PB)/.generated

# The figures docs/dispatch.md shows, redrawn from a fresh demo world.
docs: $(VENV)/.installed
	$(PY) -m training.docs_figures --out docs

demo: $(DEMO)/.generated

train: $(MODELS)/.trained

tiers: $(TIERS)/.computed

# pip < 25.3 still builds lightfm 1.17's setup.py-only sdist; it must see numpy and scipy first. Without
# build isolation hnswlib's sdist needs pybind11 installed beforehand too (a pip cache hid this).
$(VENV)/.installed: pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: set PYTHON=/path/to/python3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q "pip<25.3" "setuptools>=77,<85" wheel
	$(PIP) install -q numpy==2.3.5 scipy==1.17.1 pybind11==3.1.0
	$(PIP) install -q --no-build-isolation --no-use-pep517 lightfm==1.17
	$(PIP) install -q --no-build-isolation -e ".[dev]"
	touch $@

# Spark (the second training engine) is heavy: `make test` and `make bench` install it, `make run` does not.
$(VENV)/.spark: $(VENV)/.installed
	$(PIP) install -q -e ".[dev,spark]"
	touch $@

# Generated code is not committed: protoc writes it here and the imports are made package-relative.
$(PB)/.generated: $(VENV)/.installed $(PROTOS)
	rm -rf $(PB) && mkdir -p $(PB)
	$(PY) -m grpc_tools.protoc -Iproto --python_out=$(PB) --pyi_out=$(PB) --grpc_python_out=$(PB) $(PROTOS)
	find $(PB) -type d -exec touch {}/__init__.py \;
	sed -i -E 's/^from shifu\.v1 import/from service.pb.shifu.v1 import/' $(PB)/shifu/v1/*.py $(PB)/shifu/v1/*.pyi
	touch $@

$(DEMO)/.generated: $(VENV)/.installed
	$(PY) -m training demo --out $(DEMO)
	touch $@

# Retrained when the artifact format may have changed: the service refuses versions of another format.
$(MODELS)/.trained: $(DEMO)/.generated $(PB)/.generated models/recommend/artifact.py
	$(PY) -m training train --events $(DEMO)/events.csv --items $(DEMO)/items.csv \
		--users $(DEMO)/users.csv --out $(MODELS)
	touch $@

$(AUDIENCES)/.computed: $(MODELS)/.trained
	$(PY) -m training audiences --events $(DEMO)/events.csv --items $(DEMO)/items.csv \
		--model-dir $(MODELS) --out $(AUDIENCES)
	touch $@

$(TIERS)/.computed: $(DEMO)/.generated $(PB)/.generated
	$(PY) -m training tiers --jobs $(DEMO)/job_log.csv --out $(TIERS)
	$(PY) -m training supply-demand --jobs $(DEMO)/job_log.csv --out $(REPORTS)
	touch $@

clean:
	rm -rf $(VENV) $(STATE) $(PB)
