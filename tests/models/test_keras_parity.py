"""Parity with keras.applications, compared as numbers (reference.md §3).

The ImageNet files cannot be downloaded here, so each test writes a keras.applications
model's weights to a legacy (Keras 2 layout) h5 file -- the format of Keras' published
files -- with Keras' own legacy writer, then loads it through our `weights=` path.
BatchNorm statistics are randomised first so that every weight matters.
"""

import h5py
import keras
import numpy as np
import pytest
from keras.src.legacy.saving import legacy_h5_format

import nasnet_keras
from nasnet_keras import applications

KERAS_COUNTS = {  # Keras documentation, matched by recount (reference.md §3)
    ("mobile", True): 5_326_716,
    ("mobile", False): 4_269_716,
    ("large", True): 88_949_818,
    ("large", False): 84_916_818,
}
CONSTRUCTORS = {
    "mobile": (nasnet_keras.NASNetMobile, keras.applications.NASNetMobile, 224),
    "large": (nasnet_keras.NASNetLarge, keras.applications.NASNetLarge, 331),
}


@pytest.mark.parametrize("variant, include_top", list(KERAS_COUNTS))
def test_parameter_counts_equal_keras(variant, include_top):
    ours = CONSTRUCTORS[variant][0](weights=None, include_top=include_top)
    assert ours.count_params() == KERAS_COUNTS[(variant, include_top)]


def _randomise_batchnorm(model, seed=0):
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights([rng.uniform(0.5, 1.5, gamma.shape), rng.normal(0, 0.2, beta.shape),
                               rng.normal(0, 0.2, mean.shape), rng.uniform(0.5, 1.5, var.shape)])


def _write_legacy_h5(model, path):
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, model)


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["mobile", "large"])
def test_predictions_match_keras_with_keras_weights(variant, tmp_path):
    ours_fn, keras_fn, size = CONSTRUCTORS[variant]
    reference = keras_fn(weights=None, classifier_activation=None)
    _randomise_batchnorm(reference)
    path = str(tmp_path / f"nasnet_{variant}.h5")
    _write_legacy_h5(reference, path)

    images = np.random.default_rng(1).uniform(0, 255, (2, size, size, 3)).astype("float32")
    x = nasnet_keras.preprocess_input(images)
    expected = reference.predict(x, verbose=0)

    fresh = ours_fn(weights=None, classifier_activation=None)
    assert np.abs(fresh.predict(x, verbose=0) - expected).max() > 1e-2  # the weights do matter

    ours = ours_fn(weights=path, classifier_activation=None)
    got = ours.predict(x, verbose=0)
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)
    assert expected.std() > 1e-2  # logits are not degenerate


def test_imagenet_weights_use_keras_urls_and_hashes(monkeypatch, tmp_path):
    """weights='imagenet' fetches Keras' published file (same URL and md5) and loads it."""
    reference = keras.applications.NASNetMobile(weights=None, include_top=False, input_shape=(224, 224, 3))
    _randomise_batchnorm(reference)
    path = str(tmp_path / "nasnet_mobile_no_top.h5")
    _write_legacy_h5(reference, path)
    calls = []

    def fake_get_file(fname, origin, cache_subdir, file_hash):
        calls.append((fname, origin, cache_subdir, file_hash))
        return path

    monkeypatch.setattr(keras.utils, "get_file", fake_get_file)
    ours = nasnet_keras.NASNetMobile(weights="imagenet", include_top=False)
    assert calls == [(
        "nasnet_mobile_no_top.h5",
        "https://storage.googleapis.com/tensorflow/keras-applications/nasnet/NASNet-mobile-no-top.h5",
        "models",
        "1ed92395b5b598bdda52abe5c0dbfd63",
    )]
    bn = reference.get_layer("normal_bn_1_3")
    np.testing.assert_array_equal(_find(ours, "normal_bn_1_3").get_weights()[2], bn.get_weights()[2])
    assert applications.IMAGENET_WEIGHTS[(331, True)][2] == "11577c9a518f0070763c2b964a382f17"
    assert applications.IMAGENET_WEIGHTS[(331, False)][2] == "d81d89dc07e6e56530c4e77faddd61b5"
    assert applications.IMAGENET_WEIGHTS[(224, True)][2] == "020fb642bf7360b370c678b08e0adf61"


def _find(model, name):
    from nasnet_keras.keras_weights import weighted_leaf_layers

    return weighted_leaf_layers(model)[name]


def test_mismatched_weight_file_fails_loudly(tmp_path):
    reference = keras.applications.NASNetMobile(weights=None, include_top=False, input_shape=(96, 96, 3))
    path = str(tmp_path / "mobile_no_top.h5")
    _write_legacy_h5(reference, path)
    with pytest.raises(ValueError, match=r"model has a classifier but the file has none"):
        nasnet_keras.NASNetMobile(weights=path, input_shape=(96, 96, 3), include_top=True)
    with pytest.raises(ValueError, match=r"does not match the model .* 'separable_conv_1_normal_left1_0'|"
                                         r"does not match the model"):
        nasnet_keras.NASNet(input_shape=(96, 96, 3), penultimate_filters=1056, num_blocks=3,
                            stem_block_filters=32, skip_reduction=False, include_top=False, weights=path)


# --- the same arguments, rules and errors as keras.applications ----------------------------
@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(weights="imagenet", classes=10), r"`classes` should be 1000"),
        (dict(weights="nope.h5"), r"The `weights` argument should be either"),
        (dict(weights="imagenet", input_shape=(200, 200, 3)), r"`input_shape` should be \(224, 224, 3\)"),
        (dict(weights=None, input_shape=(31, 64, 3), include_top=False), r"Input size must be at least 32x32"),
        (dict(weights=None, input_shape=(64, 64)), r"`input_shape` must be a tuple of three integers"),
        (dict(weights="imagenet", include_top=False, input_shape=(None, None, 3)), r"must be static"),
        (dict(weights=None, classifier_activation="relu", input_shape=(64, 64, 3), include_top=True),
         None),  # Keras accepts any activation without pretrained weights
    ],
)
def test_argument_rules_follow_keras(kwargs, message):
    if message is None:
        nasnet_keras.NASNetMobile(**kwargs)
        return
    with pytest.raises(ValueError, match=message):
        nasnet_keras.NASNetMobile(**kwargs)
    with pytest.raises(ValueError, match=message):
        keras.applications.NASNetMobile(**kwargs)  # the reference raises the same error


def test_penultimate_filters_must_divide():
    with pytest.raises(ValueError, match=r"multiple of 24 \* \(`filter_multiplier` \*\* 2\).*Current value: 1000"):
        nasnet_keras.NASNet(input_shape=(64, 64, 3), penultimate_filters=1000, weights=None)


def test_channels_first_is_rejected():
    keras.backend.set_image_data_format("channels_first")
    try:
        with pytest.raises(ValueError, match="does not support the `channels_first`"):
            nasnet_keras.NASNetMobile(weights=None)
        with pytest.raises(ValueError, match="channels_first"):
            nasnet_keras.NASNetCIFAR()
    finally:
        keras.backend.set_image_data_format("channels_last")


def test_imagenet_weights_only_for_nasnet_a():
    other = nasnet_keras.Genotype.from_blocks([(0, 1, "conv_3x3", "identity")], [(0, 1, "conv_3x3", "identity")])
    with pytest.raises(ValueError, match="ImageNet weights exist only for NASNet-A"):
        nasnet_keras.NASNetMobile(genotype=other)


def test_no_top_shape_rules_and_pooling():
    # The recurring user trouble (keras #9812, #10294): include_top=False accepts other sizes.
    model = nasnet_keras.NASNetMobile(weights=None, include_top=False, input_shape=(96, 128, 3), pooling="avg")
    assert model.output_shape == (None, 1056)
    model = nasnet_keras.NASNetMobile(weights=None, include_top=False, input_shape=(None, None, 3), pooling="max")
    assert model.output_shape == (None, 1056)
    # Dynamic sizes really run (keras.applications' own dynamic-size NASNet fails here,
    # because it infers the factorised reduction from static shapes only).
    for size in (64, 96):
        assert model.predict(np.zeros((1, size, size, 3), "float32"), verbose=0).shape == (1, 1056)
    assert nasnet_keras.NASNetMobile(weights=None, include_top=False).output_shape == (None, 7, 7, 1056)


def test_preprocess_input_is_tf_mode():
    x = np.array([[[[0.0, 127.5, 255.0]]]], dtype="float32")
    np.testing.assert_allclose(nasnet_keras.preprocess_input(x.copy()), [[[[-1.0, 0.0, 1.0]]]])
    np.testing.assert_allclose(nasnet_keras.preprocess_input(x.copy()),
                               keras.applications.nasnet.preprocess_input(x.copy()))


def test_input_tensor_is_used():
    tensor = keras.Input(shape=(64, 64, 3))
    model = nasnet_keras.NASNetMobile(weights=None, input_tensor=tensor, classes=5)
    assert model.inputs[0] is tensor and model.output_shape == (None, 5)
