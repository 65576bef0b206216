"""Fine-tuning: every layer but the classifiers comes from the source; other architectures are refused."""

import numpy as np
import pytest

from nasnet_keras import genotype as genotype_module
from nasnet_keras import variants
from nasnet_keras.keras_weights import weighted_leaf_layers
from nasnet_keras.training import get_recipe
from nasnet_keras.training.models import (
    build_model,
    inspect_weights,
    load_source_model,
    resolve_model,
    transfer_weights,
)
from training_helpers import two_head_model


def test_fine_tuning_copies_all_but_the_classifiers_onto_new_classes(tmp_path):
    source_model = variants.build("cifar_6@768", num_blocks=1, filters=4, input_shape=(8, 8, 1), classes=10,
                                  aux_head=True)
    path = str(tmp_path / "source.keras")
    source_model.save(path)
    source = inspect_weights(path)
    assert (source.kind, source.classes, source.channels) == ("keras", 10, 1)
    spec = resolve_model("cifar_6@768", "cifar_6@768", num_blocks=1, filters=4)
    model_kwargs = get_recipe("cifar").model_overrides(variants.get("cifar_6@768").training_kwargs())
    target = build_model(spec, (8, 8, 1), 5, model_kwargs)
    copied = transfer_weights(load_source_model(source, spec, (8, 8, 1), model_kwargs), target)
    ours, theirs = weighted_leaf_layers(target), weighted_leaf_layers(source_model)
    fresh = {"predictions", "aux_predictions"}  # the two 5-class dense layers
    assert copied == len(ours) - len(fresh)
    for name, layer in ours.items():
        if name in fresh:
            assert layer.get_weights()[0].shape[-1] == 5
            continue
        for mine, source_weight in zip(layer.get_weights(), theirs[name].get_weights()):
            np.testing.assert_array_equal(mine, source_weight)


def test_weights_of_another_architecture_are_refused(tmp_path):
    with pytest.raises(ValueError, match=r"come from another architecture .* 1 layers have no counterpart.*hidden"):
        transfer_weights(two_head_model(inputs=6), two_head_model(inputs=5))
    other_cells = genotype_module.Genotype.from_blocks(
        [(0, 1, "sep_conv_3x3", "identity")], [(0, 1, "max_pool_3x3", "sep_conv_3x3")], name="tiny")
    spec = resolve_model(other_cells.to_json(), "mobile")
    assert spec.variant == "mobile" and spec.genotype.id == other_cells.id
    with pytest.raises(ValueError, match=r"weights='imagenet' exist only for NASNet-A mobile and large"):
        load_source_model(inspect_weights("imagenet"), spec, (224, 224, 3), {})
    with pytest.raises(ValueError, match=r"Weights file .*missing.h5' does not exist. Accepted: 'imagenet'"):
        inspect_weights(str(tmp_path / "missing.h5"))
