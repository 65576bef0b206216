"""Model Garden backbone `nasnet`: our reusable backbone SavedModel inside a tf_keras model.

Model Garden's detectors ask `official.vision.modeling.backbones.factory` for a backbone by
config type and expect a tf_keras model returning a dict of feature maps keyed by level
(str(log2(stride))) with `output_specs`. `NASNetBackbone` is that model: a
`hub.KerasLayer(trainable=True)` over a SavedModel written by `nasnet export --backbone`
(or exported on the fly from a variant / genotype JSON), so the NASNet weights, including
BatchNorm scale and offset, are trained by Model Garden's optimizer.

Which cell feeds which level (ImageNet skeleton; `savedmodels.introspect` takes the last
cell at each stride): '2' (stride 4) = the first stem Reduction cell; '3' (stride 8) = the
last Normal cell of the first stack; '4' (stride 16) = the last Normal cell of the second
stack; '5' (stride 32) = the last Normal cell of the network. The TF1 Object Detection
API instead fed its RPN from the stride-16 cells and reran the last stack per box; an FPN
over '2'..'5' is Model Garden's Faster R-CNN layout.

Images: Model Garden normalises with the ImageNet mean / standard deviation; the
SavedModel expects RGB in [0, 1] (TF Hub's convention), so the backbone undoes the
normalisation first. The SavedModel's input size is fixed at export time and must equal
the detector's `input_size`.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import tempfile

import tensorflow as tf
import tensorflow_hub as hub
import tf_keras
from official.modeling import hyperparams
from official.vision.configs import backbones as backbone_configs
from official.vision.modeling.backbones import factory
from official.vision.ops import preprocess_ops

log = logging.getLogger(__name__)

NAME = "nasnet"
LEVELS = ("2", "3", "4", "5")


@dataclasses.dataclass
class NASNet(hyperparams.Config):
    """How to get the backbone SavedModel, and how to use it.

    saved_model: a version directory written by `nasnet export --backbone` (wins over the
        fields below). Empty: export `variant` (or `genotype` in `variant`'s skeleton) at
        the detector's input size into `export_dir`.
    variant: a named variant of `nasnet_keras.variants` ("mobile", "large", ...).
    genotype: a genotype JSON (a searched cell) built into `variant`'s skeleton.
    weights: a Keras weights file for that model ('' = random initialisation).
    penultimate_filters, num_blocks, stem_block_filters: overrides of the variant (0 = keep).
    export_dir: where an on-the-fly export goes ('' = a new temporary directory).
    frozen_batchnorm: the export's training mode uses BatchNorm moving statistics
        (scale / offset still train): detection batches of 1-4 images give useless batch
        statistics. Only used when exporting here; a given `saved_model` says for itself.
    trainable: fine-tune the backbone (False: a fixed feature extractor).
    min_level, max_level: the feature levels returned (of '2'..'5').
    """

    saved_model: str = ""
    variant: str = "mobile"
    genotype: str = ""
    weights: str = ""
    penultimate_filters: int = 0
    num_blocks: int = 0
    stem_block_filters: int = 0
    export_dir: str = ""
    frozen_batchnorm: bool = True
    trainable: bool = True
    min_level: int = 2
    max_level: int = 5


@dataclasses.dataclass
class Backbone(backbone_configs.Backbone):
    """Model Garden's one-of backbone config with the `nasnet` choice added."""

    type: str | None = NAME
    nasnet: NASNet = dataclasses.field(default_factory=NASNet)


@tf_keras.utils.register_keras_serializable(package="nasnet_keras")
class NASNetBackbone(tf_keras.Model):
    """tf_keras model: images normalised as Model Garden does -> {level: feature map}."""

    def __init__(self, saved_model: str, input_specs=None, min_level: int = 2, max_level: int = 5,
                 trainable: bool = True, **kwargs):
        levels = _check_levels(min_level, max_level)
        input_specs = input_specs or tf_keras.layers.InputSpec(shape=[None, None, None, 3])
        height, width = _savedmodel_input_size(saved_model)
        requested = tuple(input_specs.shape[1:3])
        if requested != (None, None) and requested != (height, width):
            raise ValueError(
                f"The backbone SavedModel {saved_model!r} takes {height}x{width} images, but the detector's "
                f"input_size is {requested[0]}x{requested[1]}; export the backbone at the detector's size "
                "(or leave backbone.nasnet.saved_model empty to export on the fly)"
            )
        inputs = tf_keras.Input(shape=(height, width, 3), name="images")
        mean = tf.constant(preprocess_ops.MEAN_NORM, tf.float32)
        std = tf.constant(preprocess_ops.STDDEV_NORM, tf.float32)
        unit = tf_keras.layers.Lambda(lambda x: x * std + mean, name="to_unit_rgb")(inputs)
        features = hub.KerasLayer(saved_model, trainable=trainable, name="nasnet")(unit)
        missing = [level for level in levels if level not in features]
        if missing:
            raise ValueError(f"The SavedModel {saved_model!r} has no feature levels {missing}; it has {sorted(features)}")
        endpoints = {level: features[level] for level in levels}
        super().__init__(inputs=inputs, outputs=endpoints, **kwargs)
        self._config = dict(saved_model=saved_model, min_level=min_level, max_level=max_level, trainable=trainable)
        self._output_specs = {level: tensor.get_shape() for level, tensor in endpoints.items()}

    @property
    def output_specs(self):
        return self._output_specs

    def get_config(self):
        return dict(self._config)

    @classmethod
    def from_config(cls, config, custom_objects=None):
        return cls(**config)


def export_backbone(cfg: NASNet, input_size, directory: str | None = None) -> str:
    """Export cfg's variant / genotype as a reusable backbone SavedModel; returns the version dir.

    The Keras 3 model is built and exported in this process; Model Garden then loads only the
    SavedModel (tf_keras and Keras 3 never share a model).
    """
    import keras

    from nasnet_keras import variants
    from nasnet_keras.applications import load_weights
    from savedmodels import exporter

    height, width = (int(size) for size in input_size)
    overrides = {"include_top": False, "input_shape": (height, width, 3), "default_size": max(height, width)}
    for field in ("penultimate_filters", "num_blocks", "stem_block_filters"):
        if getattr(cfg, field):
            overrides[field] = int(getattr(cfg, field))
    if cfg.genotype:
        if not os.path.exists(cfg.genotype):
            raise ValueError(f"Genotype file not found: backbone.nasnet.genotype={cfg.genotype!r}")
        from nasnet_keras.genotype import as_genotype

        overrides["genotype"] = as_genotype(cfg.genotype)
    model = variants.build(cfg.variant, **overrides)
    if cfg.weights:
        load_weights(model, cfg.weights)
    directory = directory or cfg.export_dir or tempfile.mkdtemp(prefix="nasnet_backbone_")
    result = exporter.export(model, directory, kind="backbone", variant=cfg.variant,
                             source=cfg.genotype or cfg.variant, frozen_batchnorm=cfg.frozen_batchnorm)
    keras.backend.clear_session()
    log.info("exported the NASNet backbone (%s) to %s", cfg.variant, result.path)
    return result.path


@factory.register_backbone_builder(NAME)
def build_nasnet(input_specs, backbone_config, norm_activation_config, l2_regularizer=None):
    """Model Garden's builder hook. The backbone keeps its own regularisation (none by default):
    its variables live in the SavedModel, where Model Garden's `l2_regularizer` cannot reach."""
    del norm_activation_config, l2_regularizer
    cfg = backbone_config.get()
    path = cfg.saved_model or export_backbone(cfg, input_specs.shape[1:3])
    return NASNetBackbone(path, input_specs=input_specs, min_level=cfg.min_level, max_level=cfg.max_level,
                          trainable=cfg.trainable)


def _check_levels(min_level, max_level):
    allowed = [int(level) for level in LEVELS]
    if min_level not in allowed or max_level not in allowed or min_level > max_level:
        raise ValueError(f"NASNet feature levels must satisfy 2 <= min_level <= max_level <= 5. "
                         f"Received: min_level={min_level!r}, max_level={max_level!r}")
    return [str(level) for level in range(min_level, max_level + 1)]


def _savedmodel_input_size(path):
    from savedmodels.model_card import read

    if not os.path.isdir(path):
        raise ValueError(f"Backbone SavedModel not found: {path!r} (write one with `nasnet export --backbone`)")
    card = read(path)
    if card.get("kind") != "backbone":
        raise ValueError(f"{path!r} is a {card.get('kind')!r} export; the detector needs `nasnet export --backbone`")
    height, width, _ = card["input_size"]
    return int(height), int(width)
