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

.PHONY: test demo venv data clean benchmarks benchmark-detection

$(STAMP): setup.py Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test,detection]"
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
	rm -rf .data/deepforest .data/wheels
	$(PY) -m pip download -q --no-deps deepforest==2.1.0 -d .data/wheels
	$(PY) -m zipfile -e .data/wheels/deepforest-2.1.0-py3-none-any.whl .data/deepforest.partial
	mkdir -p .data/deepforest/deepforest
	mv .data/deepforest.partial/deepforest/data .data/deepforest/deepforest/data
	rm -rf .data/deepforest.partial .data/wheels

data: $(FASHION_MNIST) $(DEEPFOREST)

test: venv data
	$(PY) -m pytest -q tests

demo: venv data
	$(PY) -m nasnet_keras.cli demo --directory demo_out

benchmarks: venv
	$(PY) benchmarks/models.py

benchmark-detection: venv data
	$(PY) benchmarks/detection.py

clean:
	rm -rf $(VENV) demo_out .pytest_cache
