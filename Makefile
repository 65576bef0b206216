# The two commands of the README. Both build/refresh the virtual environment first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
FASHION_MNIST := /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
# DeepForest's tree-crown photos with Pascal VOC boxes (real detection data, offline): the
# deepforest==2.1.0 wheel is downloaded and its data folder unzipped; the package is never
# installed or imported (its code needs torch). Ignored by git.
DEEPFOREST := .data/deepforest/deepforest/data/OSBS_029.xml
export TF_CPP_MIN_LOG_LEVEL ?= 2
export PYTHONUNBUFFERED := 1

.PHONY: test demo venv data tools nas-bench-graph clean benchmarks benchmark-detection

$(STAMP): setup.py Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test,detection,onnx,litert,openvino]"
	touch $(STAMP)

venv: $(STAMP)

# Fashion-MNIST (real, offline): Debian's dataset-fashion-mnist package.
$(FASHION_MNIST):
	@if [ "$$(id -u)" = 0 ]; then \
	  (apt-get install -y -qq dataset-fashion-mnist || (apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist)); \
	else \
	  sudo apt-get install -y -qq dataset-fashion-mnist; \
	fi

$(DEEPFOREST): | $(STAMP)
	rm -rf .data/deepforest .data/wheels-deepforest
	$(PY) -m pip download -q --no-deps deepforest==2.1.0 -d .data/wheels-deepforest
	$(PY) -m zipfile -e .data/wheels-deepforest/deepforest-2.1.0-py3-none-any.whl .data/deepforest.partial
	mkdir -p .data/deepforest/deepforest
	mv .data/deepforest.partial/deepforest/data .data/deepforest/deepforest/data
	rm -rf .data/deepforest.partial .data/wheels-deepforest

data: $(FASHION_MNIST) $(DEEPFOREST)

# openssl makes the test certificates of the TLS tests (tests/tuner/test_distributed_auth.py).
tools:
	@command -v openssl >/dev/null || { if [ "$$(id -u)" = 0 ]; then \
	  (apt-get install -y -qq openssl || (apt-get update -qq && apt-get install -y -qq openssl)); \
	else sudo apt-get install -y -qq openssl; fi; }


# NAS-Bench-Graph's measured tables (the search-strategy benchmark): the PyPI wheel carries
# them as data; only nas_bench_graph/light/*.bench is unpacked (its torch code is never used).
NBG_DIR := .data/nas_bench_graph
$(NBG_DIR)/cora.bench: | $(STAMP)
	mkdir -p .data/wheels
	$(PY) -m pip download -q --no-deps nas-bench-graph==1.4.0 -d .data/wheels
	$(PY) -c "import glob, os, shutil, zipfile; \
	tmp = '$(NBG_DIR).partial'; shutil.rmtree(tmp, ignore_errors=True); os.makedirs(tmp); \
	z = zipfile.ZipFile(glob.glob('.data/wheels/nas_bench_graph-1.4.0-*.whl')[0]); \
	names = [n for n in z.namelist() if n.startswith('nas_bench_graph/light/') and n.endswith('.bench')]; \
	[open(os.path.join(tmp, os.path.basename(n)), 'wb').write(z.read(n)) for n in names]; \
	shutil.rmtree('$(NBG_DIR)', ignore_errors=True); os.replace(tmp, '$(NBG_DIR)')"

nas-bench-graph: $(NBG_DIR)/cora.bench

# Two pytest workers (pytest-xdist), one per core of the 2-core CI machine: most tests are
# single-threaded Python (tracing, building models), so one process leaves a core idle.
# tests/conftest.py keeps each file, and each directory whose session fixtures are costly,
# on one worker. TEST_WORKERS=0 runs everything in this process.
TEST_WORKERS ?= 2
test: venv data tools nas-bench-graph
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadgroup tests

demo: venv data nas-bench-graph
	$(PY) -m nasnet_keras.cli demo --directory demo_out

benchmarks: venv
	$(PY) benchmarks/models.py

benchmark-detection: venv data
	$(PY) benchmarks/detection.py

clean:
	rm -rf $(VENV) demo_out .pytest_cache
