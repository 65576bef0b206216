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
        "test": [
            "pytest",
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
            "demo = nasnet_demo:register",
        ],
    },
)
