"""Run as a script: one device against MirroredStrategy over two logical CPU devices; prints JSON.

Logical devices must be configured before TensorFlow initialises, so this runs in a
process of its own (`test_two_replicas.py` starts it once). Two checks:

* clip: a small model with what makes clipping replica-sensitive -- L2 regularisation
  losses, an auxiliary head, synchronized BatchNorm (gamma/beta gradients) -- trained
  with `fit` and `global_clipnorm` far below the gradient norm, so every step clips:
  one device, two replicas with `clip_after_all_reduce`, two replicas without it;
* moments: one synchronized BatchNorm layer on inputs whose mean dwarfs their spread
  (100 + N(0, 0.1)), output and input gradient on one device and two replicas, with
  `two_pass_synchronized_moments` (`synchronize_batch_norm`) and with Keras' own.
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tensorflow as tf  # noqa: E402

tf.config.set_logical_device_configuration(tf.config.list_physical_devices("CPU")[0],
                                           [tf.config.LogicalDeviceConfiguration()] * 2)
import keras  # noqa: E402
import numpy as np  # noqa: E402

from nasnet_keras.training import keras_distribute_fixes as fixes  # noqa: E402
from nasnet_keras.training.distribution import synchronize_batch_norm  # noqa: E402

CLIP = 0.05
STEPS = 4
ONE = tf.distribute.get_strategy()


TWO = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])


def clip_run(strategy, fixed: bool):
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16 * STEPS, 6)).astype("float32")
    y = np.eye(4, dtype="float32")[rng.integers(0, 4, 16 * STEPS)]
    norms = []
    with strategy.scope():
        inputs = keras.Input((6,))
        hidden = keras.layers.Dense(16, kernel_regularizer=keras.regularizers.L2(1e-2))(inputs)
        hidden = keras.layers.Activation("relu")(keras.layers.BatchNormalization()(hidden))
        outputs = [keras.layers.Dense(4, activation="softmax", name=name,
                                      kernel_regularizer=keras.regularizers.L2(1e-2))(hidden)
                   for name in ("predictions", "aux_predictions")]
        model = keras.Model(inputs, outputs)
        synchronize_batch_norm(model)
        model.compile(optimizer=keras.optimizers.SGD(0.5, momentum=0.9, global_clipnorm=CLIP),
                      loss={name: "categorical_crossentropy" for name in ("predictions", "aux_predictions")},
                      loss_weights={"predictions": 1.0, "aux_predictions": 0.4},
                      jit_compile=False)
        clip = model.optimizer._clip_gradients

        def recording_clip(grads):  # the norm the optimizer clips, as it sees it
            norm = tf.linalg.global_norm([g for g in grads if g is not None])
            tf.py_function(lambda n: norms.append(float(n)) or 0.0, [norm], tf.float32)
            return clip(grads)

        model.optimizer._clip_gradients = recording_clip
        if strategy is not ONE:
            fixes.build_without_a_batch(model)
            if fixed:
                assert fixes.clip_after_all_reduce(model.optimizer)
    data = tf.data.Dataset.from_tensor_slices((x, {"predictions": y, "aux_predictions": y})).batch(16)
    model.fit(data, epochs=1, verbose=0, shuffle=False)
    return model.get_weights(), norms


def largest_difference(a, b):
    return max(float(np.max(np.abs(u - v))) for u, v in zip(a, b))


def moments_run(strategy, two_pass: bool):
    rng = np.random.default_rng(1)
    x = (100 + 0.1 * rng.normal(size=(16, 3, 3, 2))).astype("float32")
    upstream = rng.normal(size=(16, 3, 3, 2)).astype("float32")
    with strategy.scope():
        layer = keras.layers.BatchNormalization(epsilon=1e-5)
        layer.build(x.shape)
        if two_pass:
            synchronize_batch_norm(keras.Sequential([keras.Input(x.shape[1:]), layer]))
        else:
            layer.synchronized = True  # Keras' own one-pass moments

    def step(x, upstream):
        with tf.GradientTape() as tape:
            tape.watch(x)
            out = layer(x, training=True)
            loss = tf.reduce_sum(out * upstream)
        return out, tape.gradient(loss, x)

    data = strategy.experimental_distribute_dataset(tf.data.Dataset.from_tensors((x, upstream)))
    out, grad = tf.function(lambda batch: strategy.run(step, args=batch))(next(iter(data)))
    return [np.concatenate(strategy.experimental_local_results(t)) for t in (out, grad)]


def reference_moments():
    """Output and input gradient with tf.nn.moments (two-pass, one device) in float64 on the same inputs."""
    rng = np.random.default_rng(1)
    x = tf.constant((100 + 0.1 * rng.normal(size=(16, 3, 3, 2))).astype("float32"), tf.float64)
    upstream = tf.constant(rng.normal(size=(16, 3, 3, 2)).astype("float32"), tf.float64)
    with tf.GradientTape() as tape:
        tape.watch(x)
        mean, variance = tf.nn.moments(x, axes=[0, 1, 2])
        loss = tf.reduce_sum((x - mean) / tf.sqrt(variance + 1e-5) * upstream)
    return [np.asarray((x - mean) / tf.sqrt(variance + 1e-5)), np.asarray(tape.gradient(loss, x))]


def main():
    single, single_norms = clip_run(ONE, fixed=False)
    fixed, fixed_norms = clip_run(TWO, fixed=True)
    unfixed, _ = clip_run(TWO, fixed=False)
    reference = reference_moments()
    moments = {}
    for name, two_pass in (("two_pass", True), ("keras", False)):
        one_device, two_replicas = moments_run(ONE, two_pass), moments_run(TWO, two_pass)
        moments[name] = {
            "one_vs_two": [largest_difference([a], [b]) for a, b in zip(one_device, two_replicas)],
            "one_vs_reference": [largest_difference([a], [r]) for a, r in zip(one_device, reference)],
        }
    json.dump({
        "clip": CLIP,
        "single_norms": single_norms,
        "fixed_norms": fixed_norms[::2],  # each replica records the same (all-reduced) norm
        "fixed_vs_single": largest_difference(fixed, single),
        "unfixed_vs_single": largest_difference(unfixed, single),
        "moments": moments,
    }, sys.stdout)


if __name__ == "__main__":
    main()
