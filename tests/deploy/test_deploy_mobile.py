"""NASNet-A Mobile (224x224, the paper's mobile model) exported to every runtime format equals Keras to 1e-4.

Random but fixed weights (BatchNorm statistics randomised so every weight matters); one
conversion per format for the whole module, since Mobile's conversions take the longest.
"""

from __future__ import annotations

import numpy as np
import pytest
from deploy_helpers import PARITY_TOLERANCE, RUNTIME_FORMATS, keras_probabilities, pixels, randomise_batchnorm

from savedmodels import deploy, runtimes

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def mobile():
    import keras

    import nasnet_keras

    keras.utils.set_random_seed(0)
    model = nasnet_keras.NASNetMobile(weights=None)
    randomise_batchnorm(model)
    return model


@pytest.fixture(scope="module")
def images_and_expected(mobile):
    images = pixels(2, size=224, seed=5)
    return images, keras_probabilities(mobile, images)


@pytest.mark.parametrize("fmt", RUNTIME_FORMATS)
def test_mobile_export_equals_keras(mobile, images_and_expected, tmp_path, fmt):
    images, expected = images_and_expected
    result = deploy.export(mobile, str(tmp_path / fmt), format=fmt, variant="mobile")
    from nasnet_keras import NASNET_A

    assert result.card["genotype"]["id"] == NASNET_A.id and result.card["input_size"] == [224, 224, 3]
    got = runtimes.load(result.model_file)(images)
    assert got.shape == (2, 1000)
    np.testing.assert_allclose(got, expected, atol=PARITY_TOLERANCE, rtol=0)
