"""nasnet_keras: Neural Architecture Search (NASNet, Zoph et al. 2018) for Keras 3 / TensorFlow."""

from setuptools import find_packages, setup

setup(
    name="nasnet_keras",
    version="0.1.0",
    description="NASNet cells, keras.applications-compatible models, NAS with keras-tuner, SavedModel export",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.11",
    packages=find_packages(include=["nasnet_keras", "nasnet_keras.*", "tuner", "tuner.*",
                                    "savedmodels", "savedmodels.*"]),
    py_modules=["nasnet_demo"],
    install_requires=[
        "tensorflow~=2.20.0",
        "keras>=3.10,<4",
        "keras-tuner==1.4.*",
        "grpcio",  # the distributed search's chief/worker channel (tuner/distributed), as keras-tuner's
        "tensorflow-datasets",
        "importlib_resources",  # TFDS' imagenet2012 builder imports it without declaring it
        "h5py",
        "matplotlib",
    ],
    extras_require={
        "gpu": ["tensorflow[and-cuda]~=2.20.0"],
        # The tf_keras side (hub.KerasLayer fine-tuning, Model Garden) lives only here.
        "hub": ["tensorflow-hub>=0.16", "tf-keras~=2.20.0"],
        "detection": ["tf-models-official==2.20.0", "tensorflow-hub>=0.16", "tf-keras~=2.20.0"],
        # Deployment runtimes (`nasnet export --format ...`, `nasnet predict`), one extra each. Checked together
        # with tensorflow 2.20 / protobuf 7 / numpy 2.4: tf2onnx 1.17, onnx 1.23, onnxruntime 1.32,
        # ai-edge-litert 2.3, openvino 2026.4.
        "onnx": ["tf2onnx>=1.17", "onnx>=1.17", "onnxruntime>=1.20"],
        "litert": ["ai-edge-litert>=2.0"],
        "openvino": ["openvino>=2025.1"],
        "test": [
            "pytest",
            "pytest-xdist",  # make test: two workers, one per core (tests/conftest.py groups them)
            "scikit-image",
            "tensorflow-serving-api~=2.20.0",
            "tensorflow-hub>=0.16",
            "tf-keras~=2.20.0",
        ],
    },
    entry_points={
        "console_scripts": ["nasnet=nasnet_keras.cli:main"],
        # `nasnet` sub-commands: NAME = module:register, `register(subparsers)` adding them
        # (see nasnet_keras/cli.py).
        "nasnet_keras.commands": [
            "profile = nasnet_keras.variants_cli:register",
            "train = nasnet_keras.training.cli:register",
            "search = tuner.cli:register",
            "export = savedmodels.cli:register",
            "predict = savedmodels.predict:register",
            "detect = savedmodels.detection.cli:register",
            "demo = nasnet_demo:register",
        ],
    },
)
