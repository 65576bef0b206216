"""`keras.applications`-compatible NASNet constructors (same signatures, rules and weights).

`NASNet`, `NASNetMobile` and `NASNetLarge` take exactly the arguments of
`keras.applications.nasnet`, apply the same input-shape rules (Keras' own
`obtain_input_shape`) and raise the same errors; `weights="imagenet"` downloads the
same files (same URLs, same md5 hashes) and loads them by name into our cells. Extra,
keyword-only arguments open the rest of the paper: any `genotype`, ScheduledDropPath,
the auxiliary head, dropout before the classifier and L2 weight decay.
"""

from __future__ import annotations

import json
import numbers
import os

import keras
from keras import layers
from keras.src.applications import imagenet_utils as _keras_imagenet_utils

from nasnet_keras.checks import check_choice, check_int
from nasnet_keras.genotype import NASNET_A, Genotype, as_genotype
from nasnet_keras.keras_weights import is_legacy_h5, load_keras_nasnet_weights
from nasnet_keras.ops import ConvBNFactory
from nasnet_keras.skeletons import aux_head as build_aux_head
from nasnet_keras.skeletons import cifar_features, imagenet_features
from nasnet_keras.size_limits import warn_if_huge

BASE_WEIGHTS_PATH = "https://storage.googleapis.com/tensorflow/keras-applications/nasnet/"
# (file name in Keras' cache, URL, md5) keyed by (default_size, include_top).
IMAGENET_WEIGHTS = {
    (224, True): ("nasnet_mobile.h5", BASE_WEIGHTS_PATH + "NASNet-mobile.h5", "020fb642bf7360b370c678b08e0adf61"),
    (224, False): (
        "nasnet_mobile_no_top.h5",
        BASE_WEIGHTS_PATH + "NASNet-mobile-no-top.h5",
        "1ed92395b5b598bdda52abe5c0dbfd63",
    ),
    (331, True): ("nasnet_large.h5", BASE_WEIGHTS_PATH + "NASNet-large.h5", "11577c9a518f0070763c2b964a382f17"),
    (331, False): (
        "nasnet_large_no_top.h5",
        BASE_WEIGHTS_PATH + "NASNet-large-no-top.h5",
        "d81d89dc07e6e56530c4e77faddd61b5",
    ),
}


def _check_common_arguments(weights, include_top, classes, input_shape, genotype: Genotype):
    if keras.backend.image_data_format() == "channels_first":
        raise ValueError(
            "NASNet does not support the `channels_first` image data format. Switch to `channels_last` "
            "by editing your local config file at ~/.keras/keras.json"
        )
    if not (weights in {"imagenet", None} or (isinstance(weights, (str, os.PathLike)) and os.path.exists(weights))):
        raise ValueError(
            "The `weights` argument should be either `None` (random initialization), `imagenet` "
            "(pre-training on ImageNet), or the path to the weights file to be loaded. "
            f"Received: weights={weights!r}"
        )
    if weights == "imagenet" and include_top and classes != 1000:
        raise ValueError(
            'If using `weights` as `"imagenet"` with `include_top` as true, `classes` should be 1000. '
            f"Received: classes={classes}"
        )
    if isinstance(input_shape, tuple) and None in input_shape and weights == "imagenet":
        raise ValueError(
            "When specifying the input shape of a NASNet and loading `ImageNet` weights, the input_shape "
            f"argument must be static (no None entries). Got: `input_shape={input_shape}`."
        )
    if weights == "imagenet" and genotype.id != NASNET_A.id:
        raise ValueError(
            f"ImageNet weights exist only for NASNet-A. Received: genotype {genotype.name or genotype.id!r}; "
            "use weights=None or a weights file for this genotype"
        )


def _image_input(input_shape, input_tensor, name=None):
    if input_tensor is None:
        return layers.Input(shape=input_shape, name=name)
    if not keras.backend.is_keras_tensor(input_tensor):
        return layers.Input(tensor=input_tensor, shape=input_shape)
    return input_tensor


def _classifier(x, img_input, input_tensor, include_top, pooling, classes, classifier_activation,
                dropout, aux_input, bn):
    """The head on the last cell; returns the model's (inputs, outputs)."""
    x = layers.Activation("relu", name="final_relu")(x)
    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        if dropout:
            x = layers.Dropout(dropout, name="dropout")(x)
        # float32 even under a mixed policy: softmax in float16 loses too much precision.
        x = layers.Dense(classes, activation=classifier_activation, kernel_regularizer=bn.regularizer(),
                         dtype="float32", name="predictions")(x)
    elif pooling == "avg":
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    elif pooling == "max":
        x = layers.GlobalMaxPooling2D(name="max_pool")(x)
    outputs = x
    if aux_input is not None:
        if not include_top:
            raise ValueError("`aux_head=True` needs `include_top=True` (the auxiliary head is a classifier)")
        outputs = [x, build_aux_head(aux_input, classes, classifier_activation, bn)]
    if input_tensor is not None:
        inputs = keras.src.ops.operation_utils.get_source_inputs(input_tensor)
    else:
        inputs = img_input
    return inputs, outputs


def _imagenet_graph(input_shape, penultimate_filters, num_blocks, stem_block_filters, skip_reduction,
                    filter_multiplier, include_top, pooling, classes, classifier_activation, genotype,
                    drop_path_keep_prob, aux_head, dropout, weight_decay, bn_momentum, bn_epsilon, input_tensor=None, input_name=None):
    """(inputs, outputs) of the ImageNet skeleton; the arguments are `NASNetModel`'s record."""
    genotype = as_genotype(genotype)
    img_input = _image_input(tuple(input_shape), input_tensor, input_name)
    filters = _filters_per_cell(penultimate_filters, filter_multiplier, genotype)
    bn = ConvBNFactory(bn_momentum, bn_epsilon, weight_decay)
    features = imagenet_features(img_input, genotype, num_blocks, filters, stem_block_filters, skip_reduction,
                                 filter_multiplier, bn, drop_path_keep_prob)
    return _classifier(features.output, img_input, input_tensor, include_top, pooling, classes,
                       classifier_activation, dropout, features.aux_input if aux_head else None, bn)


def _cifar_graph(input_shape, num_blocks, filters, stem_multiplier, filter_multiplier, include_top, pooling,
                 classes, classifier_activation, genotype, drop_path_keep_prob, aux_head, dropout, weight_decay,
                 bn_momentum, bn_epsilon, input_tensor=None, input_name=None):
    """(inputs, outputs) of the CIFAR skeleton; the arguments are `NASNetModel`'s record."""
    genotype = as_genotype(genotype)
    img_input = _image_input(tuple(input_shape), input_tensor, input_name)
    bn = ConvBNFactory(bn_momentum, bn_epsilon, weight_decay)
    features = cifar_features(img_input, genotype, num_blocks, filters, stem_multiplier, filter_multiplier, bn,
                              drop_path_keep_prob)
    return _classifier(features.output, img_input, input_tensor, include_top, pooling, classes,
                       classifier_activation, dropout, features.aux_input if aux_head else None, bn)


_GRAPHS = {"imagenet": _imagenet_graph, "cifar": _cifar_graph}


@keras.saving.register_keras_serializable(package="nasnet_keras")
class NASNetModel(keras.Model):
    """A NASNet that knows its architecture: what `NASNet`, `NASNetMobile`/`Large` and
    `NASNetCIFAR` return.

    A functional model (same layers, names, weights and outputs as the plain one) whose
    config is its constructor's arguments, keras-hub's backbone rule: a `.keras` file
    stores the recipe (`skeleton`, the genotype, N, filters, ...) and reloading calls the
    constructor, so the reloaded model has `genotype`, `skeleton` and `variant` again
    instead of a graph an exporter would have to decode. Weights are never part of the
    record (an "imagenet" model does not download again on reload: its weights are in the file).

    Attributes:
        skeleton: "imagenet" or "cifar".
        genotype: the `Genotype` of its cells.
        variant: the named variant it was built as (`variants.build`), or None.
        arguments: the skeleton builder's arguments (JSON-able; the genotype as its dict).
    """

    def __init__(self, skeleton: str, arguments: dict, variant: str | None = None, input_name: str | None = None,
                 **kwargs):
        check_choice("skeleton", skeleton, _GRAPHS)
        activation = arguments["classifier_activation"]
        arguments = {**arguments, "input_shape": tuple(arguments["input_shape"]),
                     "genotype": as_genotype(arguments["genotype"]).to_dict(),
                     # a function (keras.activations.softmax) is recorded by its registered name
                     "classifier_activation": keras.activations.serialize(activation) if callable(activation)
                     else activation}
        # `input_name`: a reloaded model keeps its input layer's name (Keras numbers
        # unnamed inputs per session), so its layer names equal the saved model's.
        inputs, outputs = _GRAPHS[skeleton](input_name=input_name, **arguments)
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        self.skeleton = skeleton
        self.variant = variant
        self.genotype = as_genotype(arguments["genotype"])
        self._arguments_json = json.dumps(arguments)  # a string: Keras does not track it as state

    @property
    def arguments(self) -> dict:
        return json.loads(self._arguments_json)

    def get_config(self) -> dict:
        return {"skeleton": self.skeleton, "arguments": self.arguments, "variant": self.variant,
                "input_name": self.layers[0].name, "name": self.name, "trainable": self.trainable}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        return cls(**config)


def _build(skeleton: str, arguments: dict, input_tensor, name: str, variant: str | None):
    if input_tensor is not None:
        # Wired into another graph: its inputs are not the model's own, so no record can
        # rebuild it; a plain functional model, as keras.applications returns.
        inputs, outputs = _GRAPHS[skeleton](input_tensor=input_tensor, **arguments)
        return keras.Model(inputs, outputs, name=name)
    return NASNetModel(skeleton, arguments, variant=variant, name=name)


def _positive_multiple(value, factor: int) -> bool:
    """Whether `value` is an integer (not a bool) > 0 divisible by `factor` (keras.applications' rule,
    whose own error wording the callers keep)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value > 0 and value % factor == 0


def _filters_per_cell(penultimate_filters: int, filter_multiplier: int, genotype: Genotype) -> int:
    # keras.applications: filters = penultimate // 24 for NASNet-A, whose Normal cell
    # concatenates 6 states, after two doublings (6 * 2**2 = 24).
    per_cell = len(genotype.normal.concat) * filter_multiplier**2
    if not _positive_multiple(penultimate_filters, per_cell * filter_multiplier**2):
        raise ValueError(
            f"For NASNet-A models, the `penultimate_filters` must be a multiple of 24 * (`filter_multiplier` ** 2) "
            f"(for this genotype: {per_cell} * {filter_multiplier}**2 = {per_cell * filter_multiplier**2}). "
            f"Current value: {penultimate_filters}"
        )
    return penultimate_filters // per_cell


def NASNet(
    input_shape=None, penultimate_filters=4032, num_blocks=6, stem_block_filters=96, skip_reduction=True,
    filter_multiplier=2, include_top=True, weights="imagenet", input_tensor=None, pooling=None, classes=1000,
    default_size=None, classifier_activation="softmax", name="NASNet",
    *, genotype=None, drop_path_keep_prob: float = 1.0, aux_head: bool = False, dropout: float = 0.0,
    weight_decay: float = 0.0, bn_momentum: float = 0.9997, bn_epsilon: float = 1e-3, variant: str | None = None,
):
    """Instantiate an ImageNet-skeleton NASNet ("N @ F" with N = num_blocks, F = penultimate_filters).

    The positional arguments are exactly `keras.applications.nasnet.NASNet`'s. Keyword-only extras:

    Args:
        genotype: the cells (a `Genotype`, its dict/JSON, a file or a registered name);
            NASNet-A by default.
        drop_path_keep_prob: ScheduledDropPath's final keep probability (1.0 = off, as in Keras);
            advance it with `nasnet_keras.ScheduledDropPathCallback`.
        aux_head: add TF-slim's auxiliary classifier; the model then has two outputs
            `[predictions, aux_predictions]`.
        dropout: dropout rate before the classifier (the paper uses 0.5; Keras has none).
        weight_decay: L2 weight decay on conv/dense kernels in TF-slim's convention.
        bn_momentum, bn_epsilon: BatchNorm settings (Keras': 0.9997 / 1e-3).
        variant: the named variant this model is, recorded on the model (`variants.build` sets it).

    Returns a `NASNetModel` (a plain functional `keras.Model` when built on `input_tensor`).
    """
    genotype = as_genotype(genotype if genotype is not None else NASNET_A)
    _check_common_arguments(weights, include_top, classes, input_shape, genotype)
    if default_size is None:
        default_size = 331
    input_shape = _keras_imagenet_utils.obtain_input_shape(
        input_shape,
        default_size=default_size,
        min_size=32,
        data_format=keras.backend.image_data_format(),
        require_flatten=include_top,
        weights=weights,
    )
    filters = _filters_per_cell(penultimate_filters, filter_multiplier, genotype)
    warn_if_huge(genotype, num_blocks, filters, input_shape[0], "imagenet", filter_multiplier)
    if include_top:
        _keras_imagenet_utils.validate_activation(classifier_activation, weights)
    arguments = dict(
        input_shape=input_shape, penultimate_filters=penultimate_filters, num_blocks=num_blocks,
        stem_block_filters=stem_block_filters, skip_reduction=skip_reduction, filter_multiplier=filter_multiplier,
        include_top=include_top, pooling=pooling, classes=classes, classifier_activation=classifier_activation,
        genotype=genotype.to_dict(), drop_path_keep_prob=drop_path_keep_prob, aux_head=aux_head, dropout=dropout,
        weight_decay=weight_decay, bn_momentum=bn_momentum, bn_epsilon=bn_epsilon,
    )
    model = _build("imagenet", arguments, input_tensor, name, variant)
    _load_weights(model, weights, default_size, include_top)
    return model


def _load_weights(model, weights, default_size, include_top):
    if weights == "imagenet":
        if (default_size, include_top) not in IMAGENET_WEIGHTS:
            raise ValueError("ImageNet weights can only be loaded with NASNetLarge or NASNetMobile")
        fname, url, md5 = IMAGENET_WEIGHTS[(default_size, include_top)]
        path = keras.utils.get_file(fname, url, cache_subdir="models", file_hash=md5)
        load_keras_nasnet_weights(model, path)
    elif weights is not None:
        load_weights(model, weights)


def load_weights(model, path):
    """Load keras.applications' legacy h5 files by name; anything else through Keras."""
    from nasnet_keras import model_files

    path = os.fspath(path)
    if path.endswith(".h5"):
        model_files.check_weights(model, path)  # unreadable, or another genotype's: refused by name
    if path.endswith(".h5") and not path.endswith(".weights.h5") and is_legacy_h5(path):
        load_keras_nasnet_weights(model, path)
    else:
        model.load_weights(path)


# keras.applications' two named configurations (the bodies of its NASNetMobile and
# NASNetLarge); `nasnet_keras.variants` reads its "mobile" and "large" rows from here.
MOBILE = {"penultimate_filters": 1056, "num_blocks": 4, "stem_block_filters": 32, "skip_reduction": False,
          "default_size": 224}
LARGE = {"penultimate_filters": 4032, "num_blocks": 6, "stem_block_filters": 96, "skip_reduction": True,
         "default_size": 331}


def NASNetMobile(input_shape=None, include_top=True, weights="imagenet", input_tensor=None, pooling=None,
                 classes=1000, classifier_activation="softmax", name="nasnet_mobile", **kwargs):
    """NASNet-A (4 @ 1056) at 224x224, as `keras.applications.NASNetMobile`."""
    if not include_top and input_shape is None:
        input_shape = (224, 224, 3)
    return NASNet(input_shape, include_top=include_top, weights=weights, input_tensor=input_tensor, pooling=pooling,
                  classes=classes, classifier_activation=classifier_activation, name=name, **MOBILE, **kwargs)


def NASNetLarge(input_shape=None, include_top=True, weights="imagenet", input_tensor=None, pooling=None,
                classes=1000, classifier_activation="softmax", name="nasnet_large", **kwargs):
    """NASNet-A (6 @ 4032) at 331x331, as `keras.applications.NASNetLarge`."""
    return NASNet(input_shape, include_top=include_top, weights=weights, input_tensor=input_tensor, pooling=pooling,
                  classes=classes, classifier_activation=classifier_activation, name=name, **LARGE, **kwargs)


def NASNetCIFAR(
    input_shape=(32, 32, 3), penultimate_filters=768, num_blocks=6, stem_multiplier=3.0, filter_multiplier=2,
    include_top=True, weights=None, input_tensor=None, pooling=None, classes=10, classifier_activation="softmax",
    name="nasnet_cifar",
    *, genotype=None, filters: int | None = None, drop_path_keep_prob: float = 1.0, aux_head: bool = False,
    dropout: float = 0.0, weight_decay: float = 0.0, bn_momentum: float = 0.9, bn_epsilon: float = 1e-5,
    variant: str | None = None,
):
    """The CIFAR skeleton (3x3 stem conv, N normal, reduction, N normal, reduction, N normal).

    Defaults are NASNet-A (6 @ 768) with TF-slim's CIFAR BatchNorm settings. `filters`
    (the first stack's per-cell filters) may be given instead of `penultimate_filters`,
    which is how small search children are sized. Inputs must be at least 8x8 (two
    reductions) and channels_last.
    """
    genotype = as_genotype(genotype if genotype is not None else NASNET_A)
    if keras.backend.image_data_format() == "channels_first":
        raise ValueError("NASNet does not support the `channels_first` image data format. Use `channels_last`.")
    if weights is not None and not os.path.exists(weights):
        raise ValueError(f"`weights` must be None or the path to a weights file. Received: weights={weights!r}")
    if input_tensor is None:
        if input_shape is None or len(input_shape) != 3:
            raise ValueError(f"`input_shape` must be a tuple of three integers (H, W, C). Received: {input_shape}")
        if any(s is not None and s < 8 for s in input_shape[:2]):
            raise ValueError(f"Input size must be at least 8x8; Received: input_shape={input_shape}")
    if filters is None:
        per_cell = len(genotype.normal.concat) * filter_multiplier**2
        if not _positive_multiple(penultimate_filters, per_cell):
            raise ValueError(
                f"`penultimate_filters` must be a positive multiple of {per_cell} (the genotype's "
                f"{len(genotype.normal.concat)} concatenated states x {filter_multiplier}**2). "
                f"Received: penultimate_filters={penultimate_filters}"
            )
        filters = penultimate_filters // per_cell
    else:
        check_int("filters", filters, minimum=2)
    warn_if_huge(genotype, num_blocks, filters, (input_shape or (None,))[0], "cifar", filter_multiplier)
    arguments = dict(
        input_shape=input_shape, num_blocks=num_blocks, filters=filters, stem_multiplier=stem_multiplier,
        filter_multiplier=filter_multiplier, include_top=include_top, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, genotype=genotype.to_dict(),
        drop_path_keep_prob=drop_path_keep_prob, aux_head=aux_head, dropout=dropout, weight_decay=weight_decay,
        bn_momentum=bn_momentum, bn_epsilon=bn_epsilon,
    )
    model = _build("cifar", arguments, input_tensor, name, variant)
    if weights is not None:
        load_weights(model, weights)
    return model


def preprocess_input(x, data_format=None):
    """Scale pixels from [0, 255] to [-1, 1] (Keras' "tf" mode), as keras.applications.nasnet."""
    return _keras_imagenet_utils.preprocess_input(x, data_format=data_format, mode="tf")


def decode_predictions(preds, top=5):
    """Decode ImageNet predictions into (class_id, name, score) tuples (Keras' class index)."""
    return _keras_imagenet_utils.decode_predictions(preds, top=top)
