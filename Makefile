# The two commands of the README. Both build/refresh the virtual environment first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
FASHION_MNIST := /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
export TF_CPP_MIN_LOG_LEVEL ?= 2
export PYTHONUNBUFFERED := 1

.PHONY: test demo venv data clean benchmarks

$(STAMP): setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test,onnx,litert,openvino]"
	touch $(STAMP)

venv: $(STAMP)

# Fashion-MNIST (real, offline): Debian's dataset-fashion-mnist package.
$(FASHION_MNIST):
	@if [ "$$(id -u)" = 0 ]; then \
	  (apt-get install -y -qq dataset-fashion-mnist || (apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist)); \
	else \
	  sudo apt-get install -y -qq dataset-fashion-mnist; \
	fi

data: $(FASHION_MNIST)

test: venv data
	$(PY) -m pytest -q tests

demo: venv data
	$(PY) -m nasnet_keras.cli demo --directory demo_out

benchmarks: venv
	$(PY) benchmarks/models.py

clean:
	rm -rf $(VENV) demo_out .pytest_cache
