"""Built models know their architecture (`NASNetModel`): genotype, skeleton and variant survive `.keras`."""

import json

import keras
import numpy as np

import nasnet_keras
from nasnet_keras import NASNetCIFAR, variants
from nasnet_keras.applications import NASNetModel
from nasnet_keras.genotype import NASNET_A, Genotype

GENOTYPE = Genotype.from_blocks([(0, 1, "sep_conv_3x3", "identity")], [(0, 1, "max_pool_3x3", "conv_1x1")])


def test_the_record_survives_a_keras_file(tmp_path):
    model = NASNetCIFAR(input_shape=(16, 16, 3), num_blocks=1, filters=4, classes=3, genotype=GENOTYPE)
    assert isinstance(model, NASNetModel) and model.skeleton == "cifar" and model.genotype == GENOTYPE
    config = model.get_config()
    json.dumps(config)  # plain JSON: the constructor's arguments, no weights
    assert config["arguments"]["filters"] == 4 and config["arguments"]["genotype"] == GENOTYPE.to_dict()
    x = np.random.default_rng(1).uniform(0, 255, (2, 16, 16, 3)).astype("float32")
    model.save(tmp_path / "m.keras")
    reloaded = keras.models.load_model(tmp_path / "m.keras")
    assert isinstance(reloaded, NASNetModel) and reloaded.genotype == GENOTYPE and reloaded.skeleton == "cifar"
    assert [layer.name for layer in reloaded.layers] == [layer.name for layer in model.layers]
    np.testing.assert_array_equal(reloaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_variants_and_keras_applications_constructors_record_what_they_are():
    small = variants.build("cifar_6@768", num_blocks=1, penultimate_filters=96)
    assert small.variant == "cifar_6@768" and small.genotype == NASNET_A
    mobile = nasnet_keras.NASNetMobile(weights=None, include_top=False, input_shape=(64, 64, 3))
    assert isinstance(mobile, NASNetModel) and mobile.skeleton == "imagenet" and mobile.variant is None
    assert mobile.arguments["num_blocks"] == 4 and mobile.arguments["penultimate_filters"] == 1056


def test_a_model_on_an_input_tensor_is_plain_functional():
    tensor = keras.layers.Input((16, 16, 3))
    model = NASNetCIFAR(input_tensor=tensor, num_blocks=1, filters=4, classes=3)
    assert not isinstance(model, NASNetModel) and isinstance(model, keras.Model)
