"""Genotype: validation with clear errors, JSON/dict round trips, stable ids, readable str."""

import json

import pytest

from nasnet_keras.genotype import COMBINES, OPS, Block, CellGenotype, Genotype, as_genotype
from nasnet_keras.genotype import NASNET_A

NORMAL = [(0, 1, "sep_conv_3x3", "identity"), (0, 2, "avg_pool_3x3", "max_pool_3x3", "concat")]
REDUCTION = [(0, 1, "sep_conv_5x5", "max_pool_3x3"), (2, 1, "conv_1x1", "identity", "add_layernorm")]


def test_nasnet_a_matches_tf_slim_tables():
    # TF-slim nasnet_utils: ops, hidden-state indices and used_hiddenstates (reference.md §2).
    slim_normal_ops = ["sep_conv_5x5", "sep_conv_3x3", "sep_conv_5x5", "sep_conv_3x3", "avg_pool_3x3",
                       "identity", "avg_pool_3x3", "avg_pool_3x3", "sep_conv_3x3", "identity"]
    slim_reduction_ops = ["sep_conv_5x5", "sep_conv_7x7", "max_pool_3x3", "sep_conv_7x7", "avg_pool_3x3",
                          "sep_conv_5x5", "identity", "avg_pool_3x3", "sep_conv_3x3", "max_pool_3x3"]
    flat = lambda cell, attr: [x for b in cell.blocks for x in getattr(b, attr)]  # noqa: E731
    assert flat(NASNET_A.normal, "ops") == slim_normal_ops
    assert flat(NASNET_A.normal, "inputs") == [0, 1, 1, 1, 0, 1, 1, 1, 0, 0]
    assert flat(NASNET_A.reduction, "ops") == slim_reduction_ops
    assert flat(NASNET_A.reduction, "inputs") == [0, 1, 0, 1, 0, 1, 3, 2, 2, 0]
    used_normal, used_reduction = [1, 0, 0, 0, 0, 0, 0], [1, 1, 1, 0, 0, 0, 0]
    assert NASNET_A.normal.concat == tuple(i for i, u in enumerate(used_normal) if not u)
    assert NASNET_A.reduction.concat == tuple(i for i, u in enumerate(used_reduction) if not u)
    assert all(b.combine == "add" for b in NASNET_A.normal.blocks + NASNET_A.reduction.blocks)


def test_thirteen_ops_and_combines():
    assert len(OPS) == 13 and len(set(OPS)) == 13
    assert COMBINES[:2] == ("add", "concat")


def test_round_trips_and_stable_id():
    g = Genotype.from_blocks(NORMAL, REDUCTION, name="toy")
    assert Genotype.from_dict(g.to_dict()) == g
    assert Genotype.from_json(g.to_json()) == g
    assert as_genotype(g.to_json()) == g and as_genotype(g.to_dict()) == g
    assert Genotype.from_dict(json.loads(json.dumps(g.to_dict()))).id == g.id
    # The id ignores the label and is a hash of the canonical form (stable across runs).
    assert Genotype.from_blocks(NORMAL, REDUCTION, name="other").id == g.id
    assert NASNET_A.id == "4148ad991d"
    assert len(g.id) == 10 and g.id != NASNET_A.id


def test_file_round_trip(tmp_path):
    path = tmp_path / "g.json"
    NASNET_A.save(str(path))
    assert Genotype.load(str(path)) == NASNET_A
    assert as_genotype(str(path)) == NASNET_A
    assert as_genotype("nasnet_a") == NASNET_A


def test_default_concat_is_loose_ends():
    g = Genotype.from_blocks(NORMAL, REDUCTION)
    # Normal: states 0-2 are read by blocks, state 3 (block 1's output) by nobody.
    assert g.normal.concat == (3,)
    g2 = Genotype.from_blocks([(0, 0, "identity", "conv_3x3")], [(0, 1, "identity", "identity")])
    assert g2.normal.concat == (1, 2)  # an unread cell input is concatenated too (TF-slim)
    assert g.reduction.concat == (3,)


def test_str_is_readable():
    text = str(NASNET_A)
    assert "NASNet-A" in text and NASNET_A.id in text
    assert "sep_conv_5x5(s0) + sep_conv_3x3(s1)" in text
    assert "out = concat[1, 2, 3, 4, 5, 6]" in text


@pytest.mark.parametrize(
    "normal, message",
    [
        ([(0, 2, "sep_conv_3x3", "identity")], r"block 0: `second input` must be an integer in 0\.\.1 \(a hidden-state index"),
        ([(0, -1, "sep_conv_3x3", "identity")], r"block 0: `second input` .* Received: second input=-1"),
        ([(0, 1, "conv_9x9", "identity")], r"block 0: unknown first op 'conv_9x9'\. Accepted ops: identity"),
        ([(0, 1, "identity", "identity", "mul")], r"block 0: unknown combine method 'mul'\. Accepted: add, concat"),
        ([(0, 1, "identity", "identity"), (0, 3, "identity", "identity")], r"block 1: `second input` .*0\.\.2"),
    ],
)
def test_invalid_fields_name_the_block_and_accepted_values(normal, message):
    with pytest.raises(ValueError, match=message):
        Genotype.from_blocks(normal, [(0, 1, "identity", "identity")] * len(normal))


def test_block_count_mismatch_and_declared_count():
    with pytest.raises(ValueError, match="same number of blocks B.*normal has 2, reduction has 1"):
        Genotype.from_blocks(NORMAL, REDUCTION[:1])
    data = json.loads(NASNET_A.to_json())
    data["num_blocks"] = 4
    with pytest.raises(ValueError, match="num_blocks=4 but its cells have 5 blocks"):
        Genotype.from_dict(data)
    with pytest.raises(ValueError, match="at least one block"):
        CellGenotype((), "normal")


def test_corrupted_json_and_wrong_shapes():
    with pytest.raises(ValueError, match="Not a genotype JSON document"):
        Genotype.from_json("{not json")
    data = json.loads(NASNET_A.to_json())
    data["normal"]["blocks"][0]["ops"][0] = "sep_conv_9x9"
    del data["id"]
    with pytest.raises(ValueError, match="normal cell, block 0: unknown first op 'sep_conv_9x9'"):
        Genotype.from_dict(data)
    data = json.loads(NASNET_A.to_json())
    data["reduction"]["blocks"][1]["inputs"] = [0]
    with pytest.raises(ValueError, match="reduction cell, block 1: `inputs` must be a pair"):
        Genotype.from_dict(data)
    data = json.loads(NASNET_A.to_json())
    data["normal"]["blocks"][2]["inputs"] = [0, 1]  # unchanged cells, so only the id check could fail
    data["normal"]["blocks"][2]["ops"] = ["avg_pool_3x3", "avg_pool_3x3"]
    with pytest.raises(ValueError, match="stored id '4148ad991d' does not match"):
        Genotype.from_dict(data)
    with pytest.raises(ValueError, match="Unknown genotype 'no_such_cell'"):
        as_genotype("no_such_cell")


def test_explicit_concat_validation():
    with pytest.raises(ValueError, match=r"block outputs \[3\] are read by no block and so must be in `concat`"):
        Genotype.from_blocks(NORMAL, REDUCTION, concat={"normal": (1,)})
    with pytest.raises(ValueError, match="strictly increasing"):
        Genotype.from_blocks(NORMAL, REDUCTION, concat={"normal": (3, 1)})
    with pytest.raises(ValueError, match=r"`concat` must be an integer in 0\.\.3 \(a state index"):
        Genotype.from_blocks(NORMAL, REDUCTION, concat={"normal": (3, 7)})


def test_blocks_are_immutable():
    with pytest.raises(Exception):
        NASNET_A.normal.blocks[0].ops = ("identity", "identity")  # type: ignore[misc]
    assert isinstance(NASNET_A.normal.blocks[0], Block)
