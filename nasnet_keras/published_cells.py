"""Named genotypes: published cells as data, not code.

NASNet-A is transcribed from TF-slim's `nasnet_utils.NasNetANormalCell` /
`NasNetAReductionCell` (operations and hidden-state indices; reference.md §2), which
keras.applications' hand-written cells also implement. NASNet-B and NASNet-C exist only
as figures in the paper (App. B) and no public code defines them, so they are not
registered here: guessing them would give users a wrong architecture under a real name.
"""

from __future__ import annotations

from nasnet_keras.genotype import Genotype

# Rows: (input_1, input_2, op_1, op_2, combine). Slim's "none" is our "identity".
NASNET_A = Genotype.from_blocks(
    normal=[
        (0, 1, "sep_conv_5x5", "sep_conv_3x3"),
        (1, 1, "sep_conv_5x5", "sep_conv_3x3"),
        (0, 1, "avg_pool_3x3", "identity"),
        (1, 1, "avg_pool_3x3", "avg_pool_3x3"),
        (0, 0, "sep_conv_3x3", "identity"),
    ],
    reduction=[
        (0, 1, "sep_conv_5x5", "sep_conv_7x7"),
        (0, 1, "max_pool_3x3", "sep_conv_7x7"),
        (0, 1, "avg_pool_3x3", "sep_conv_5x5"),
        (3, 2, "identity", "avg_pool_3x3"),
        (2, 0, "sep_conv_3x3", "max_pool_3x3"),
    ],
    name="NASNet-A",
    # slim's used_hiddenstates are a table of their own, not derived from the indices:
    # normal [1, 0, 0, 0, 0, 0, 0] concatenates h_{i-1} although blocks read it, and
    # reduction [1, 1, 1, 0, 0, 0, 0] concatenates state 3 although block 4 reads it.
    normal_concat=(1, 2, 3, 4, 5, 6),
    reduction_concat=(3, 4, 5, 6),
)

GENOTYPES: dict[str, Genotype] = {"nasnet_a": NASNET_A}


def get(name: str) -> Genotype:
    try:
        return GENOTYPES[name]
    except KeyError:
        raise ValueError(f"Unknown genotype name {name!r}. Registered: {', '.join(GENOTYPES)}") from None
