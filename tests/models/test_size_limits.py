"""Huge genotypes are announced with their estimated cost before anything is built; the estimate is honest."""

import time
import warnings

import pytest

from nasnet_keras import NASNET_A, NASNet, NASNetCIFAR, size_limits, variants
from nasnet_keras.genotype import Genotype
from nasnet_keras.size_limits import ModelSizeWarning


def wide_genotype(blocks: int) -> Genotype:
    # A chain: block b combines the previous block's output with the one before it.
    rows = [(b + 1, b, "sep_conv_5x5", "sep_conv_3x3") for b in range(blocks)]
    return Genotype.from_blocks(normal=rows, reduction=rows, name=f"B{blocks}")


@pytest.mark.parametrize("genotype, kwargs", [
    (NASNET_A, dict(num_blocks=1, filters=4, input_shape=(16, 16, 3))),
    (wide_genotype(3), dict(num_blocks=2, filters=6, input_shape=(16, 16, 3))),
])
def test_the_estimate_is_close_to_the_built_model(genotype, kwargs):
    model = NASNetCIFAR(genotype=genotype, weights=None, include_top=False, stem_multiplier=3, **kwargs)
    cells = [layer for layer in model.layers if "cell" in type(layer).__name__.lower()]
    cell_params = sum(layer.count_params() for layer in cells)
    estimate = size_limits.estimate(genotype, kwargs["num_blocks"], kwargs["filters"], 16, "cifar",
                                    stem_filters=3 * kwargs["filters"])
    assert estimate.cells == len(cells)
    assert 0.7 < estimate.params / cell_params < 1.3, (estimate, cell_params)


def test_the_papers_variants_are_within_the_ceiling_and_their_estimates_match_the_paper():
    for name in ("mobile", "large", "cifar_7@2304"):
        variant = variants.get(name)
        filters = variant.penultimate_filters // 24
        cost = size_limits.estimate(NASNET_A, variant.num_blocks, filters, variant.image_size,
                                    variant.skeleton, stem_filters=variant.stem_filters)
        assert cost.params < size_limits.MAX_PARAMS and cost.mult_adds < size_limits.MAX_MULT_ADDS
        assert cost.ops <= size_limits.MAX_OPS
        assert 0.7 < cost.params / variant.paper_params < 1.3, (name, cost)
        if variant.paper_mult_adds:
            assert 0.7 < cost.mult_adds / variant.paper_mult_adds < 1.3, (name, cost)


@pytest.mark.parametrize("build, kwargs, what", [
    (NASNet, dict(genotype=wide_genotype(200), input_shape=(224, 224, 3), penultimate_filters=1056, num_blocks=4,
                  stem_block_filters=32, skip_reduction=False), "cell operations"),
    (NASNet, dict(input_shape=(331, 331, 3), penultimate_filters=4032 * 3, num_blocks=6), "parameters"),
    (NASNetCIFAR, dict(genotype=wide_genotype(60), input_shape=(32, 32, 3), num_blocks=6, filters=32),
     "cell operations"),
])
def test_huge_models_warn_with_their_cost_before_building(build, kwargs, what):
    start = time.monotonic()
    with warnings.catch_warnings():
        warnings.simplefilter("error", ModelSizeWarning)  # an error stops the build at the warning
        with pytest.raises(ModelSizeWarning) as warned:
            build(weights=None, **kwargs)
    assert time.monotonic() - start < 5  # nothing was built
    message = str(warned.value)
    assert what in message and "parameters" in message and "Mult-Adds" in message and "ceiling" in message
