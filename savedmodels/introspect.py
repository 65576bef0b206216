"""What an export needs to know about a built NASNet Keras model, read from the model itself.

A `.keras` file, a variant and a genotype-plus-weights all end as a `keras.Model`, and
the exporter must not depend on how the model was made. So the facts it needs are read
from the model's layers: the genotype (the model's own record, `NASNetModel.genotype`;
for a plain functional model, from the `NASNetCell`s' configs), the feature
maps by level (the last cell output at each stride), the pooled feature vector and the classifier head, if any.
"""

from __future__ import annotations

import dataclasses
import math

import keras

from nasnet_keras.cells import NASNetCell
from nasnet_keras.genotype import NAMED_GENOTYPES, Genotype


@dataclasses.dataclass
class ModelFacts:
    """The parts of a NASNet model that the signatures and the reusable object expose."""

    model: keras.Model
    input_size: tuple[int, int]
    classifier: keras.Model | None  # images ([-1, 1]) -> class scores; None for backbones
    classifier_activation: str | None  # the head's activation ("softmax", "linear", ...)
    num_classes: int | None
    pooled: keras.Model  # images -> (batch, channels) pooled features
    levels: keras.Model  # images -> {str(log2(stride)): feature map}
    level_keys: list[str]  # the levels' keys, ascending stride
    genotype: Genotype | None
    channels: int = 3  # 3 (RGB) or 1 (grayscale, e.g. a Fashion-MNIST model)
    # What the network was trained on: "scale" (x / 127.5 - 1, keras.applications and the
    # ImageNet recipe) or "standardize" (per-image whitening: the CIFAR recipe, the search, the demo).
    preprocessing: str = "scale"


def describe(model: keras.Model) -> ModelFacts:
    """Read the export-relevant structure of `model` (a functional NASNet model)."""
    if not isinstance(model, keras.Model) or not hasattr(model, "inputs") or not model.inputs:
        raise ValueError(
            "Export needs a built functional Keras model (as returned by nasnet_keras.NASNet, "
            f"NASNetCIFAR or variants.build). Received: {type(model).__name__}"
        )
    if len(model.inputs) != 1:
        raise ValueError(f"Export needs a model with one image input. Received {len(model.inputs)} inputs")
    shape = tuple(model.inputs[0].shape)
    if len(shape) != 4 or shape[-1] not in (1, 3) or shape[1] is None or shape[2] is None:
        raise ValueError(
            "Export needs a static (H, W, 3) image input (or (H, W, 1) for grayscale), because NASNet cells fix their "
            f"padding and reductions at build time. Received input shape {shape[1:]}; rebuild the "
            "model with input_shape=(H, W, 3) (RGB) or (H, W, 1) (grayscale)"
        )
    height, width = int(shape[1]), int(shape[2])
    cells = [layer for layer in model.layers if isinstance(layer, NASNetCell)]
    if not cells:
        raise ValueError(f"Model {model.name!r} has no NASNetCell layers; export expects a nasnet_keras model")

    levels = {}
    for cell in cells:  # model.layers is in topological order: later cells overwrite earlier ones
        out = cell.output
        levels[str(round(math.log2(height / out.shape[1])))] = out
    last = cells[-1].output

    names = {layer.name for layer in model.layers}
    if "avg_pool" in names:
        pooled_tensor = model.get_layer("avg_pool").output
    else:
        relu = model.get_layer("final_relu").output if "final_relu" in names else keras.layers.ReLU()(last)
        pooled_tensor = keras.layers.GlobalAveragePooling2D(name="export_avg_pool")(relu)

    classifier = activation = num_classes = None
    if "predictions" in names:
        head = model.get_layer("predictions")
        classifier = keras.Model(model.inputs[0], head.output, name=f"{model.name}_classifier")
        activation = getattr(head.activation, "__name__", str(head.activation))
        num_classes = int(head.output.shape[-1])

    return ModelFacts(
        model=model,
        input_size=(height, width),
        classifier=classifier,
        classifier_activation=activation,
        num_classes=num_classes,
        pooled=keras.Model(model.inputs[0], pooled_tensor, name=f"{model.name}_pooled"),
        levels=keras.Model(model.inputs[0], levels, name=f"{model.name}_levels"),
        level_keys=sorted(levels, key=int),
        genotype=getattr(model, "genotype", None) or _genotype(cells),
        channels=int(shape[-1]),
    )


def _genotype(cells) -> Genotype | None:
    """The genotype of a plain functional model (a `.keras` file written before `NASNetModel`
    records it, or a model built on an `input_tensor`), recovered from its cells."""
    normal = next((c.genotype for c in cells if c.genotype.cell_type == "normal"), None)
    reduction = next((c.genotype for c in cells if c.genotype.cell_type == "reduction"), None)
    if normal is None or reduction is None:
        return None
    genotype = Genotype(normal, reduction)
    for known in NAMED_GENOTYPES.values():
        if known.id == genotype.id:
            return known
    return genotype
