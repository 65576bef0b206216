"""Published cells as data: the rows of each named genotype, not code.

NASNet-A is transcribed from TF-slim's `nasnet_utils.NasNetANormalCell` /
`NasNetAReductionCell` (operations and hidden-state indices; reference.md §2), which
keras.applications' hand-written cells also implement. NASNet-B and NASNet-C exist only
as figures in the paper (App. B) and no public code defines them, so they are not
listed here: guessing them would give users a wrong architecture under a real name.

This module holds plain rows only (the arguments of `Genotype.from_blocks`), so the value
type in `nasnet_keras.genotype` can build and look up the named genotypes without an
import cycle.
"""

from __future__ import annotations

# Block b of the Normal cell beside block b of the Reduction cell; each row is
# (input_1, input_2, op_1, op_2[, combine]). Slim's "none" is our "identity".
_NASNET_A_BLOCKS = (
    ((0, 1, "sep_conv_5x5", "sep_conv_3x3"), (0, 1, "sep_conv_5x5", "sep_conv_7x7")),
    ((1, 1, "sep_conv_5x5", "sep_conv_3x3"), (0, 1, "max_pool_3x3", "sep_conv_7x7")),
    ((0, 1, "avg_pool_3x3", "identity"), (0, 1, "avg_pool_3x3", "sep_conv_5x5")),
    ((1, 1, "avg_pool_3x3", "avg_pool_3x3"), (3, 2, "identity", "avg_pool_3x3")),
    ((0, 0, "sep_conv_3x3", "identity"), (2, 0, "sep_conv_3x3", "max_pool_3x3")),
)

NASNET_A = {
    "normal": [normal for normal, _ in _NASNET_A_BLOCKS],
    "reduction": [reduction for _, reduction in _NASNET_A_BLOCKS],
    "name": "NASNet-A",
    # slim's used_hiddenstates are a table of their own, not derived from the indices:
    # normal [1, 0, 0, 0, 0, 0, 0] concatenates h_{i-1} although blocks read it, and
    # reduction [1, 1, 1, 0, 0, 0, 0] concatenates state 3 although block 4 reads it.
    "concat": {"normal": (1, 2, 3, 4, 5, 6), "reduction": (3, 4, 5, 6)},
}

# Registered name -> `Genotype.from_blocks` keyword arguments.
PUBLISHED: dict[str, dict] = {"nasnet_a": NASNET_A}
