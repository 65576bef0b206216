"""Models and images shared by the deployment-format tests (a module name no other test folder uses)."""

from __future__ import annotations

import numpy as np

SIZE = 32
CLASSES = 4
CLASS_NAMES = ["sandal", "shirt", "sneaker", "bag"]
RUNTIME_FORMATS = ("onnx", "litert", "openvino")
PARITY_TOLERANCE = 1e-4

# A searched-style architecture, not NASNet-A: separable, dilated and plain convolutions, pools,
# a concat combine, one input reused twice.
SEARCHED_BLOCKS = dict(
    normal=[(0, 1, "sep_conv_3x3", "identity"), (0, 2, "avg_pool_3x3", "max_pool_3x3", "concat"),
            (1, 2, "dil_conv_3x3", "sep_conv_5x5")],
    reduction=[(0, 1, "sep_conv_5x5", "max_pool_3x3"), (2, 1, "conv_1x1", "identity"),
               (0, 3, "conv_1x7_7x1", "avg_pool_3x3")],
)


def searched_genotype():
    from nasnet_keras import Genotype

    return Genotype.from_blocks(**SEARCHED_BLOCKS)


def randomise_batchnorm(model, seed=1):
    """Move BatchNorm statistics off (0, 1) so that an export that lost them would show."""
    import keras

    rng = np.random.default_rng(seed)
    from nasnet_keras.layer_tree import walk

    for layer in walk(model):
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights([rng.uniform(0.5, 1.5, gamma.shape), rng.normal(0, 0.2, beta.shape),
                               rng.normal(0, 0.2, mean.shape), rng.uniform(0.5, 1.5, var.shape)])


def searched_model():
    """A small CIFAR-skeleton model of the searched genotype, logits head (softmax must be added)."""
    import keras

    import nasnet_keras

    keras.utils.set_random_seed(0)
    model = nasnet_keras.NASNetCIFAR(input_shape=(SIZE, SIZE, 3), filters=8, num_blocks=1, classes=CLASSES,
                                     classifier_activation=None, genotype=searched_genotype(), name="searched")
    randomise_batchnorm(model)
    return model


def pixels(count, size=SIZE, seed=3):
    """Float RGB images 0..255 (NHWC)."""
    return np.random.RandomState(seed).uniform(0, 255, (count, size, size, 3)).astype("float32")


def keras_probabilities(model, images):
    """The reference: what `serving_default` computes, in Keras."""
    import nasnet_keras

    out = model.predict(nasnet_keras.preprocess_input(images.copy()), verbose=0)
    if model.get_layer("predictions").activation.__name__ == "linear":
        out = np.exp(out - out.max(-1, keepdims=True))
        out /= out.sum(-1, keepdims=True)
    return out


def write_pngs(directory, images):
    """Save images as PNG files; returns their paths."""
    import os

    import tensorflow as tf

    paths = []
    for i, image in enumerate(images):
        path = os.path.join(directory, f"image_{i}.png")
        tf.io.write_file(path, tf.io.encode_png(np.round(image).astype(np.uint8)))
        paths.append(path)
    return paths
