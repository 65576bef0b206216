"""The paper's accounting (params, Mult-Adds) reproduced; deviations are the documented ones.

docs/accounting.md explains the figures that cannot be matched and gives the numbers
these tests pin down.
"""

import keras
import pytest

import nasnet_keras
from nasnet_keras import variants, variants_cli
from nasnet_keras.profiling import count_mult_adds, profile


@pytest.fixture(scope="module")
def rows():
    return {name: variants_cli.profile_variant(variants.get(name)) for name in variants.VARIANTS}


def within(value, target, tolerance=0.02):
    return abs(value - target) <= tolerance * target


@pytest.mark.slow
def test_mobile_and_large_match_the_paper_within_2_percent(rows):
    for name in ("mobile", "large"):
        row, v = rows[name], variants.get(name)
        assert within(row["params"], v.paper_params), (name, row["params"])
        assert within(row["mult_adds"], v.paper_mult_adds), (name, row["mult_adds"])
    assert rows["mobile"]["mult_adds"] == 563_639_344 or within(rows["mobile"]["mult_adds"], 564e6, 0.001)


@pytest.mark.slow
def test_cifar_6_at_768_matches_in_trainable_parameters(rows):
    # The paper counts trainable weights; BatchNorm's moving statistics add 1.1% more.
    assert within(rows["cifar_6@768"]["trainable"], 3.3e6)
    assert rows["cifar_6@768"]["params"] == 3_384_682


@pytest.mark.slow
def test_documented_deviations(rows):
    """Figures the paper's configurations cannot give (see docs/accounting.md)."""
    # 5 @ 1538 / 7 @ 1920 at 299: the paper's params match our builds *without* the
    # 1000-way classifier within 2% (10.78M vs 10.9M, 22.78M vs 22.6M); Mult-Adds are 6-9% higher.
    for name, classifier in (("5@1538", 1536 * 1000 + 1000), ("7@1920", 1920 * 1000 + 1000)):
        body = rows[name]["params"] - classifier
        assert within(body, variants.get(name).paper_params), (name, body)
    assert within(rows["5@1538"]["mult_adds"], 2.552e9, 0.005)
    assert within(rows["7@1920"]["mult_adds"], 5.227e9, 0.005)
    # 7 @ 2304 CIFAR has 32.7M; the paper's 27.6M is what F = 2112 (88 filters) gives.
    assert within(rows["cifar_7@2304"]["params"], 32.73e6, 0.005)


def test_mult_adds_count_equals_keras_applications_structure():
    ours = nasnet_keras.NASNetMobile(weights=None, input_shape=(96, 96, 3), include_top=False)
    theirs = keras.applications.NASNetMobile(weights=None, input_shape=(96, 96, 3), include_top=False)
    assert count_mult_adds(ours) == count_mult_adds(theirs)


def test_mult_adds_by_hand_on_a_tiny_model():
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", use_bias=False)(inputs)  # 8*8*4 * 3*3*3 = 6912
    x = keras.layers.DepthwiseConv2D(3, padding="same", use_bias=False)(x)  # 8*8*4 * 3*3 = 2304
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(5)(x)  # 4*5 = 20
    result = profile(keras.Model(inputs, outputs))
    assert result.mult_adds == 6912 + 2304 + 20
    assert result.params == 108 + 36 + 25


def test_profile_cli(capsys):
    from nasnet_keras.cli import main

    assert main(["profile", "cifar_6@768"]) == 0
    out = capsys.readouterr().out
    assert "cifar_6@768" in out and "3.38M" in out and "3.30M" in out
    assert main(["profile", "no_such_variant"]) == 2
    assert "Unknown variant 'no_such_variant'" in capsys.readouterr().err
