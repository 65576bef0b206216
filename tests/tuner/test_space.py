"""SearchSpace: decision order and names, keras-tuner hyperparameters, round trips, errors."""

import numpy as np
import pytest

from nasnet_keras.genotype import OPS, Genotype
from nasnet_keras.genotype import NASNET_A
from tuner.categorical import CategoricalSpace
from tuner.space import SearchSpace


def random_values(space, seed):
    rng = np.random.default_rng(seed)
    return space.from_indices([int(rng.integers(size)) for size in space.sizes])


def test_decisions_follow_the_paper_order():
    space = SearchSpace()
    names = space.names
    assert len(names) == 50 == len(space.sizes)  # 2 cells x 5 blocks x 5 decisions
    assert names[:5] == ["normal_b0_input_1", "normal_b0_input_2", "normal_b0_op_1", "normal_b0_op_2",
                         "normal_b0_combine"]
    assert names[25] == "reduction_b0_input_1" and names[-1] == "reduction_b4_combine"
    decisions = dict(space.decisions)
    # Block b reads the two cell inputs or any of the b earlier blocks' outputs.
    for b in range(5):
        assert decisions[f"normal_b{b}_input_1"] == tuple(range(2 + b))
        assert decisions[f"reduction_b{b}_input_2"] == tuple(range(2 + b))
    assert decisions["normal_b3_op_2"] == OPS
    assert decisions["reduction_b1_combine"] == ("add", "concat")
    assert space.sizes[:5] == [2, 2, 13, 13, 2]


def test_hyperparameters_one_choice_of_one_type_per_decision():
    space = SearchSpace(combines=("add",))
    hp = space.hyperparameters()
    assert [p.name for p in hp.space] == space.names
    for p, (_, values) in zip(hp.space, space.decisions):
        assert list(p.values) == list(values)
        assert len({type(v) for v in p.values}) == 1
    assert hp.values["normal_b2_combine"] == "add"  # single option still specified


def test_nasnet_a_is_outside_the_loose_end_space_but_its_blocks_round_trip():
    space = SearchSpace()
    with pytest.raises(ValueError, match=r"concatenates states \[1, 2, 3, 4, 5, 6\].*loose ends"):
        space.encode(NASNET_A)
    decoded = space.decode(space.encode(NASNET_A, ignore_concat=True))
    assert decoded.normal.blocks == NASNET_A.normal.blocks
    assert decoded.reduction.blocks == NASNET_A.reduction.blocks
    assert decoded.normal.concat == decoded.normal.loose_ends != NASNET_A.normal.concat
    # Same blocks with the default (loose-end) output is exactly in the space.
    loose = Genotype.from_dict({"normal": {"blocks": NASNET_A.to_dict()["normal"]["blocks"]},
                                "reduction": {"blocks": NASNET_A.to_dict()["reduction"]["blocks"]}})
    assert space.decode(space.encode(loose)) == loose


@pytest.mark.parametrize("seed", range(5))
def test_random_values_round_trip(seed):
    space = SearchSpace(combines=("add", "concat", "add_layernorm"))
    values = random_values(space, seed)
    genotype = space.decode(values)
    assert genotype.normal.concat == genotype.normal.loose_ends
    assert genotype.reduction.concat == genotype.reduction.loose_ends
    assert space.encode(genotype) == values
    assert space.decode(space.encode(genotype)) == genotype
    assert space.from_indices(space.to_indices(values)) == values
    # Extra hyperparameters (e.g. training ones) in a trial's values are ignored.
    assert space.decode({**values, "learning_rate": 0.1}) == genotype


def test_numpy_ints_are_accepted():
    space = SearchSpace()
    values = {k: (np.int64(v) if isinstance(v, int) else v) for k, v in random_values(space, 0).items()}
    assert space.decode(values).normal.blocks[0].inputs[0] in (0, 1)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"normal_b0_input_1": 2}, r"normal_b0_input_1.*Received: 2.*Accepted: 0, 1"),
        ({"normal_b0_input_1": 1.0}, r"normal_b0_input_1.*Received: 1.0"),
        ({"normal_b0_input_1": True}, r"normal_b0_input_1.*Received: True"),
        ({"reduction_b4_op_2": "conv_5x5"}, r"reduction_b4_op_2.*'conv_5x5'.*'sep_conv_3x3'"),
        ({"normal_b1_combine": "add_layernorm"}, r"normal_b1_combine.*Accepted: 'add', 'concat'"),
    ],
)
def test_invalid_values_raise(change, message):
    space = SearchSpace()
    with pytest.raises(ValueError, match=message):
        space.decode({**random_values(space, 1), **change})


def test_missing_values_and_bad_indices_raise():
    space = SearchSpace()
    values = random_values(space, 2)
    del values["reduction_b3_op_1"]
    with pytest.raises(ValueError, match="reduction_b3_op_1"):
        space.decode(values)
    with pytest.raises(ValueError, match="Expected 50 decision indices"):
        space.from_indices([0] * 49)
    with pytest.raises(ValueError, match=r"decision 'normal_b0_op_1': `index` must be an integer in 0\.\.12\. Received: index=13"):
        space.from_indices([0, 0, 13] + [0] * 47)


def test_genotypes_outside_the_space_raise():
    space = SearchSpace(num_blocks=4)
    with pytest.raises(ValueError, match="B=5.*B=4"):
        space.encode(NASNET_A, ignore_concat=True)
    small = SearchSpace(ops=("identity", "sep_conv_3x3"))
    with pytest.raises(ValueError, match=r"op_1 'sep_conv_5x5' is not in this search space. Accepted: identity, sep_conv_3x3"):
        small.encode(NASNET_A, ignore_concat=True)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"num_blocks": 0}, r"num_blocks=0"),
        ({"num_blocks": 2.5}, r"num_blocks=2.5"),
        ({"ops": ("identity", "conv_9x9")}, r"'conv_9x9'.*Accepted: identity, conv_1x3_3x1"),
        ({"ops": ()}, r"non-empty"),
        ({"combines": ("mul",)}, r"'mul'.*Accepted: add, concat, add_layernorm, add_instancenorm"),
        ({"combines": ("add", "add")}, r"must not repeat"),
    ],
)
def test_invalid_space_raises(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SearchSpace(**kwargs)


def test_dict_round_trip_and_equality():
    space = SearchSpace(num_blocks=3, ops=("identity", "max_pool_3x3"), combines=("add",))
    again = SearchSpace.from_dict(space.to_dict())
    assert again == space and again.sizes == space.sizes
    assert SearchSpace() != space
    with pytest.raises(ValueError, match="Unknown search-space keys"):
        SearchSpace.from_dict({"num_blocks": 5, "blocks": 5})


@pytest.mark.parametrize("space", [SearchSpace(num_blocks=1),
                                   CategoricalSpace("small", [("normal_b0_input_1", (0, 1)), ("op", ("a", "b"))])],
                         ids=["nasnet", "categorical"])
def test_both_spaces_share_one_rule_for_values_and_indices(space):
    """numpy integers pass as ints; bools and floats never pass for an int; the error names the value."""
    sizes = space.sizes
    indices = [size - 1 for size in sizes]
    values = space.from_indices([np.int64(i) for i in indices])
    assert space.to_indices(values) == indices and all(type(i) is int for i in space.to_indices(values))
    as_numpy = {k: (np.int32(v) if isinstance(v, int) else v) for k, v in values.items()}
    assert space.to_indices(as_numpy) == indices
    for bad in (True, 1.0):
        with pytest.raises(ValueError, match=rf"decision 'normal_b0_input_1'.*Received: {bad!r}\. Accepted: 0, 1"):
            space.to_indices({**values, "normal_b0_input_1": bad})
        with pytest.raises(ValueError, match=rf"decision 'normal_b0_input_1': `index` must be an integer in 0\.\.1\. "
                                             rf"Received: index={bad!r}"):
            space.from_indices([bad] + indices[1:])
    with pytest.raises(ValueError, match=r"in 0\.\.1\. Received: index=(np\.int64\()?2\b"):
        space.from_indices([np.int64(2)] + indices[1:])
    with pytest.raises(ValueError, match=r"miss 1 decision\(s\).*'normal_b0_input_1'"):
        space.to_indices({k: v for k, v in values.items() if k != "normal_b0_input_1"})


def test_categorical_values_may_be_numpy_ints_and_are_stored_as_ints():
    space = CategoricalSpace("s", [("x", (np.int64(3), 4))])
    assert space.to_dict() == {"name": "s", "decisions": [["x", [3, 4]]]}
    with pytest.raises(ValueError, match=r"Decision 'x' needs distinct int or str values. Received: values=\[True, 2\]"):
        CategoricalSpace("s", [("x", (True, 2))])
