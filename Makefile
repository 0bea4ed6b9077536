# make setup  - .venv with torch 2.13.0 (CPU) and our compiled packages
# make test   - the whole test suite (runs setup first)
# make bench  - benchmarks, JSON under benchmarks/results/
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
DGR := submodules/diff-gaussian-rasterization
DGR_SOURCES := $(wildcard $(DGR)/csrc/*.cpp $(DGR)/csrc/*.h $(DGR)/csrc/*/*.cpp $(DGR)/csrc/*/*.h \
                          $(DGR)/diff_gaussian_rasterization/*.py $(DGR)/setup.py)
KNN := submodules/simple-knn
KNN_SOURCES := $(wildcard $(KNN)/csrc/* $(KNN)/simple_knn/*.py $(KNN)/setup.py)
export MAX_JOBS ?= 2

.PHONY: setup test bench clean

setup: $(VENV)/.deps $(VENV)/.dgr $(VENV)/.knn

$(VENV)/.deps: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -r requirements.txt
	touch $@

# --no-build-isolation: an isolated build would fetch a CUDA torch and mismatched headers.
$(VENV)/.dgr: $(VENV)/.deps $(DGR_SOURCES)
	$(PIP) install -q --no-build-isolation ./$(DGR)
	touch $@

$(VENV)/.knn: $(VENV)/.deps $(KNN_SOURCES)
	$(PIP) install -q --no-build-isolation ./$(KNN)
	touch $@

test: setup
	$(PY) -m pytest -q tests

bench: setup
	$(PY) benchmarks/rasterizer.py --json benchmarks/results/rasterizer.json
	$(PY) benchmarks/knn.py --json benchmarks/results/simple_knn.json

clean:
	rm -rf $(VENV) $(DGR)/build $(DGR)/*.egg-info $(KNN)/build $(KNN)/*.egg-info
