"""Every named variant and random genotypes: build, forward, backward, `.keras` round trip."""

import random

import keras
import numpy as np
import pytest
import tensorflow as tf

import nasnet_keras
from nasnet_keras import variants
from nasnet_keras.genotype import COMBINES, OPS, Genotype


def random_genotype(seed: int, num_blocks: int = 5) -> Genotype:
    rng = random.Random(seed)

    def cell():
        return [
            (rng.randrange(2 + b), rng.randrange(2 + b), rng.choice(OPS), rng.choice(OPS), rng.choice(COMBINES))
            for b in range(num_blocks)
        ]

    return Genotype.from_blocks(cell(), cell(), name=f"random-{seed}")


def _forward_backward(model, x, y):
    with tf.GradientTape() as tape:
        outputs = model(x, training=True)
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        loss = sum(keras.ops.mean(keras.losses.sparse_categorical_crossentropy(y, o)) for o in outputs)
    grads = tape.gradient(loss, model.trainable_variables)
    assert np.isfinite(float(loss))
    missing = [v.path for v, g in zip(model.trainable_variables, grads) if g is None]
    assert not missing, f"variables without gradient: {missing[:5]}"
    return outputs


def _round_trip(model, x, tmp_path):
    path = str(tmp_path / "model.keras")
    model.save(path)
    reloaded = keras.models.load_model(path)
    # Eager calls: tracing `predict` functions for full-size variants costs more than the test.
    expected = keras.tree.flatten(model(x, training=False))
    got = keras.tree.flatten(reloaded(x, training=False))
    assert len(expected) == len(got)
    for e, g in zip(expected, got):
        np.testing.assert_allclose(np.asarray(g), np.asarray(e), atol=1e-5)
    # The architecture came back from the config, not from a default.
    genotypes = {layer.genotype for layer in reloaded.layers if isinstance(layer, nasnet_keras.NASNetCell)}
    return reloaded, genotypes


@pytest.mark.slow
@pytest.mark.parametrize("name", list(variants.VARIANTS))
def test_named_variant_builds_trains_and_round_trips(name, tmp_path):
    variant = variants.get(name)
    size = 32  # tiny inputs: the ImageNet skeleton's minimum, the CIFAR skeleton's own size
    model = variant.build(input_shape=(size, size, 3), classes=3, aux_head=True,
                          drop_path_keep_prob=variant.drop_path_keep_prob if variant.drop_path_keep_prob < 1 else 0.9)
    x = np.random.default_rng(0).normal(size=(2, size, size, 3)).astype("float32")
    y = np.array([0, 2])
    outputs = _forward_backward(model, x, y)
    assert [o.shape for o in outputs] == [(2, 3), (2, 3)]
    _, genotypes = _round_trip(model, x, tmp_path)
    assert {g.cell_type for g in genotypes} == {"normal", "reduction"}


@pytest.mark.parametrize("seed", range(4))
def test_random_genotypes_build_train_and_round_trip(seed, tmp_path):
    genotype = random_genotype(seed)
    model = nasnet_keras.NASNetCIFAR(input_shape=(16, 16, 3), num_blocks=1, filters=4, classes=3,
                                     genotype=genotype, drop_path_keep_prob=0.8, aux_head=seed % 2 == 0)
    x = np.random.default_rng(seed).normal(size=(2, 16, 16, 3)).astype("float32")
    _forward_backward(model, x, np.array([1, 2]))
    _, genotypes = _round_trip(model, x, tmp_path)
    assert genotypes == {genotype.normal, genotype.reduction}


def test_random_genotype_on_imagenet_skeleton_with_dynamic_size():
    genotype = random_genotype(42)
    model = nasnet_keras.NASNet(input_shape=(None, None, 3), penultimate_filters=96 * 1, num_blocks=1,
                                stem_block_filters=8, weights=None, include_top=False, pooling="avg",
                                genotype=genotype)
    # Output channels come from the genotype's concatenation, so compare with a static build.
    for size in (33, 48):
        out = model.predict(np.zeros((1, size, size, 3), "float32"), verbose=0)
        assert out.shape[0] == 1 and out.shape[1] == model.output_shape[1]


def test_every_op_and_combine_in_both_cells(tmp_path):
    """A genotype that uses each of the 13 ops and 4 combines, strided and not."""
    normal = [(0, 1, OPS[i], OPS[(i + 1) % 13], COMBINES[i % 4]) for i in range(0, 13, 2)]
    normal = [(min(a, 1 + b), min(c, 1 + b), o1, o2, comb) for b, (a, c, o1, o2, comb) in enumerate(normal)]
    reduction = [(b % 2, (b + 1) % (2 + b), OPS[(i + 5) % 13], OPS[(i + 6) % 13], COMBINES[(i + 1) % 4])
                 for b, i in enumerate(range(0, 13, 2))]
    genotype = Genotype.from_blocks(normal, reduction)
    used = {op for cell in (genotype.normal, genotype.reduction) for block in cell.blocks for op in block.ops}
    assert used == set(OPS)
    model = nasnet_keras.NASNetCIFAR(input_shape=(16, 16, 3), num_blocks=1, filters=4, classes=2, genotype=genotype)
    x = np.random.default_rng(0).normal(size=(2, 16, 16, 3)).astype("float32")
    _forward_backward(model, x, np.array([0, 1]))
    _round_trip(model, x, tmp_path)


def test_n_at_f_structure_of_cifar_skeleton():
    model = nasnet_keras.NASNetCIFAR(num_blocks=2, penultimate_filters=96, classes=10)
    cells = [layer for layer in model.layers if isinstance(layer, nasnet_keras.NASNetCell)]
    assert [c.genotype.cell_type for c in cells] == ["normal"] * 2 + ["reduction"] + ["normal"] * 2 + \
        ["reduction"] + ["normal"] * 2
    assert [c.filters for c in cells] == [4, 4, 8, 8, 8, 16, 16, 16]  # doubling at each reduction
    assert cells[-1].output.shape == (None, 8, 8, 96)  # F = penultimate filters
    assert model.get_layer("stem_conv1").filters == 12  # 4 filters x stem multiplier 3


def test_imagenet_skeleton_strides_and_skip_reduction():
    model = nasnet_keras.NASNet(input_shape=(224, 224, 3), penultimate_filters=96, num_blocks=1,
                                stem_block_filters=8, skip_reduction=True, weights=None, include_top=False)
    cells = [layer for layer in model.layers if isinstance(layer, nasnet_keras.NASNetCell)]
    assert [c.name for c in cells] == ["reduction_cell_stem_1", "reduction_cell_stem_2", "normal_cell_0",
                                       "reduction_cell_reduce_1", "normal_cell_2", "reduction_cell_reduce_2",
                                       "normal_cell_3"]
    # skip_reduction: the normal cell after a reduction reads the cell before that reduction's input.
    after_reduction = model.get_layer("normal_cell_2")
    assert after_reduction.adjust is not None and after_reduction.adjust.name.startswith("adjust_reduction")
    assert model.output_shape == (None, 7, 7, 96)


def test_aux_head_and_dropout():
    model = nasnet_keras.NASNetCIFAR(num_blocks=1, filters=4, aux_head=True, dropout=0.5, classes=7)
    assert [o.shape for o in model.outputs] == [(None, 7), (None, 7)]
    assert model.get_layer("dropout").rate == 0.5
    # The aux head reads the cell just before the second reduction (2/3 of the depth).
    aux_input = model.get_layer("aux_relu_0").input
    assert aux_input is model.get_layer("normal_cell_2").output
    with pytest.raises(ValueError, match="`aux_head=True` needs `include_top=True`"):
        nasnet_keras.NASNetCIFAR(num_blocks=1, filters=4, aux_head=True, include_top=False)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(penultimate_filters=100), r"`penultimate_filters` must be a positive multiple of 24.*100"),
        (dict(filters=0), r"`filters` must be an integer >= 2. Received: filters=0"),
        (dict(input_shape=(4, 4, 3)), r"at least 8x8; Received: input_shape=\(4, 4, 3\)"),
        (dict(input_shape=(32, 32)), r"tuple of three integers"),
        (dict(drop_path_keep_prob=0.0), r"`drop_path_keep_prob` must be in \(0, 1\]"),
        (dict(genotype="nonexistent"), r"Unknown genotype 'nonexistent'"),
    ],
)
def test_cifar_bad_input(kwargs, message):
    with pytest.raises(ValueError, match=message):
        nasnet_keras.NASNetCIFAR(**{"num_blocks": 1, **kwargs})


def test_unknown_variant():
    with pytest.raises(ValueError, match=r"Unknown variant 'huge'. Named variants: mobile, 5@1538"):
        variants.build("huge")


def test_mixed_precision_forward_backward():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = nasnet_keras.NASNetCIFAR(input_shape=(16, 16, 3), num_blocks=1, filters=4, classes=3,
                                         drop_path_keep_prob=0.7, aux_head=True)
        for layer in nasnet_keras.drop_path.drop_path_layers(model):
            layer.progress.assign(1.0)
        x = np.random.default_rng(0).normal(size=(4, 16, 16, 3)).astype("float32")
        outputs = _forward_backward(model, x, np.array([0, 1, 2, 0]))
        assert [o.dtype for o in outputs] == ["float32", "float32"]  # classifiers stay float32
        assert model.get_layer("normal_cell_0").compute_dtype == "float16"
        assert all(v.dtype == "float32" for v in model.trainable_variables)
    finally:
        keras.mixed_precision.set_global_policy("float32")
