"""The reusable SavedModel fine-tunes in tf_keras through `hub.KerasLayer(trainable=True)`.

Also: a `.keras` file saved mid-training with an EMA optimizer exports its averages, and a
backbone export returns feature maps by level.
"""

from __future__ import annotations

import importlib

import json
import os

import numpy as np
import pytest
import tensorflow as tf
from savedmodel_helpers import CLASSES, SIZE, tiny_nasnet

TOL = 1e-5


def _hub():
    hub = importlib.import_module("tensorflow_hub")
    tf_keras = importlib.import_module("tf_keras")
    return hub, tf_keras


def _by_name(variables, fragment):
    matches = [v for v in variables if fragment in v.name]
    assert matches, f"no variable named like {fragment!r}"
    return matches[0]


def _train_a_few_steps(tf_keras, model, images, steps=2):
    labels = np.arange(len(images)) % CLASSES
    model.compile(tf_keras.optimizers.SGD(0.1), "sparse_categorical_crossentropy")
    history = model.fit(images, labels, batch_size=len(images), epochs=steps, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))


def test_hub_keras_layer_wraps_the_classifier(exported, classifier, images):
    """Inference, weights and losses through tf_keras; training mode updates BatchNorm statistics.

    (Gradient steps through a reloaded function cost ~15 s of CPU to derive, so they are
    taken once, in the backbone test below.)
    """
    hub, tf_keras = _hub()
    layer = hub.KerasLayer(exported.path, trainable=True)
    inputs = tf_keras.Input((SIZE, SIZE, 3))
    model = tf_keras.Model(inputs, layer(inputs))
    unit = images / 255.0
    np.testing.assert_allclose(model(unit, training=False).numpy(),
                               classifier(images / 127.5 - 1.0, training=False).numpy(), atol=TOL)
    assert len(model.trainable_weights) == len(classifier.trainable_weights)
    assert len(model.non_trainable_weights) == len(classifier.non_trainable_weights)
    assert len(model.losses) == 1 and float(model.losses[0]) > 0  # the weight decay, forwarded

    obj = layer.resolved_object
    moving_mean = _by_name(obj.variables, "stem_bn1/moving_mean")
    before = moving_mean.numpy().copy()
    model(unit, training=False)
    np.testing.assert_array_equal(moving_mean.numpy(), before)  # inference leaves statistics alone
    model(unit, training=True)
    assert np.abs(moving_mean.numpy() - before).max() > 0
    layer.trainable = False  # a frozen hub layer runs in inference mode, as a frozen BatchNorm
    frozen = moving_mean.numpy().copy()
    model(unit, training=True)
    np.testing.assert_array_equal(moving_mean.numpy(), frozen)


def test_ema_backbone_exported_from_keras_file_by_the_cli(tmp_path, images, capsys):
    """A .keras file saved mid-training (raw weights + EMA in the optimizer) -> a backbone export
    whose feature maps are the EMA model's, fine-tunable as a dict of levels."""
    import keras

    from nasnet_keras import cli
    from savedmodels import introspect, read_model_card

    keras.utils.set_random_seed(1)
    model = tiny_nasnet()
    model.compile(keras.optimizers.SGD(0.05, use_ema=True, ema_momentum=0.5), "sparse_categorical_crossentropy")
    # The optimizer state of a run stopped after 3 steps, set directly (a Keras train step
    # would cost ~20 s of tracing and test Keras' EMA arithmetic, not the export).
    model.optimizer.build(model.trainable_variables)
    rng = np.random.RandomState(4)
    for variable, average in zip(model.trainable_variables, model.optimizer._model_variables_moving_average):
        average.assign(variable.numpy() + rng.normal(0, 0.05, variable.shape).astype("float32"))
    model.optimizer.iterations.assign(3)
    path = str(tmp_path / "trained.keras")
    model.save(path)
    averages = [v.numpy() for v in model.optimizer._model_variables_moving_average]

    base = str(tmp_path / "backbone")
    assert cli.main(["export", "--model", path, "--out", base, "--backbone", "--variant", "tiny"]) == 0
    assert "exported backbone" in capsys.readouterr().out
    version = os.path.join(base, "1")
    card = read_model_card(version)
    assert card["weights"] == "ema" and card["ema_steps"] == 3 and card["kind"] == "backbone"
    assert card["call_output"] == "dict of feature maps by level" and card["variant"] == "tiny"
    # --backbone changes __call__ only: the model has a head, so the signatures still classify.
    assert set(card["signatures"]["serving_default"]["outputs"]) == {"probabilities", "classes", "scores"}
    json.dumps(card)

    # Expected: the same model with the averages in place of the raw weights.
    for variable, average in zip(model.trainable_variables, averages):
        variable.assign(average)
    levels = introspect.describe(model).levels
    expected = {k: v.numpy() for k, v in levels(images / 127.5 - 1.0, training=False).items()}
    hub, tf_keras = _hub()
    layer = hub.KerasLayer(version, trainable=True)
    loaded = layer.resolved_object  # what tf.saved_model.load(version) returns
    outputs = loaded(images / 255.0)
    assert sorted(outputs) == ["2", "3", "4", "5"]
    for level, value in outputs.items():
        assert value.shape[1] == SIZE // 2 ** int(level)
        np.testing.assert_allclose(value.numpy(), expected[level], atol=TOL)
    features = loaded.signatures["features"](images=tf.constant(images))["features"]
    np.testing.assert_allclose(features.numpy(), expected["5"].clip(0).mean(axis=(1, 2)), atol=TOL)

    # Fine-tuning the backbone in tf_keras: a new head on level '5'.
    inputs = tf_keras.Input((SIZE, SIZE, 3))
    maps = layer(inputs)
    pooled = tf_keras.layers.GlobalAveragePooling2D()(tf_keras.layers.ReLU()(maps["5"]))
    head = tf_keras.Model(inputs, tf_keras.layers.Dense(CLASSES, activation="softmax")(pooled))
    obj = layer.resolved_object
    watched = [_by_name(obj.trainable_variables, "stem_conv1/kernel"), _by_name(obj.variables, "stem_bn1/moving_mean")]
    before = [v.numpy().copy() for v in watched]
    _train_a_few_steps(tf_keras, head, images / 255.0)
    for variable, old in zip(watched, before):
        assert np.abs(variable.numpy() - old).max() > 0, f"{variable.name} did not change"


def test_ema_swap_restores_raw_weights_even_on_error():
    import keras

    from savedmodels import ema_export as ema

    variable = keras.Variable(np.ones(3, np.float32))
    average = keras.Variable(np.full(3, 5.0, np.float32))
    with pytest.raises(RuntimeError):
        with ema.swapped_in([(variable, average)]):
            np.testing.assert_array_equal(variable.numpy(), 5.0)
            raise RuntimeError("save failed")
    np.testing.assert_array_equal(variable.numpy(), 1.0)
