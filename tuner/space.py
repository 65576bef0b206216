"""The NASNet search space as a flat list of categorical decisions.

The controller, PPO and keras-tuner all see an architecture as 10B categorical choices
(paper Sec. 3, App. A.4): for each of the B blocks of the Normal cell, then for each of the
B blocks of the Reduction cell, pick input 1, input 2, op 1, op 2 and the combine method.
`SearchSpace` owns that flattening, in the paper's order, and converts between its three
views of one architecture:

* keras-tuner values: `{"normal_b0_input_1": 0, ..., "reduction_b4_combine": "add"}`,
* decision indices: `[0, 1, 10, 11, 0, ...]` (what the controller samples and scores),
* a `Genotype` (what the model builder consumes and what is written to disk).

Only the searched part of a cell is a decision: the cell output is always the
concatenation of its loose ends (paper Sec. 3), so `decode` builds cells with the default
`concat` (which `CellGenotype` resolves to the loose ends).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from nasnet_keras.checks import check_int
from nasnet_keras.genotype import COMBINES, NUM_CELL_INPUTS, OPS, Block, CellGenotype, Genotype
from tuner.categorical import DecisionSpace

CELL_TYPES = ("normal", "reduction")
FIELDS = ("input_1", "input_2", "op_1", "op_2", "combine")


class SearchSpace(DecisionSpace):
    """B blocks per cell, a set of ops and a set of combine methods.

    The decisions' views and the values <-> indices conversions are `DecisionSpace`'s (one
    rule with `CategoricalSpace`); this class adds the genotype: `decode`, `encode` and the
    reward cache's `architecture_key`.

    Args:
        num_blocks: B, the number of blocks per cell (paper: 5).
        ops: the ops a block may apply to each input (default: the paper's 13).
        combines: how a block merges its two branches (default: NASNet-A's "add" and
            "concat"; "add_layernorm" and "add_instancenorm" add NASNet-B/C's options).
            A space with a single combine still emits the decision, with one value, so
            that keras-tuner values always specify the whole genotype.
    """

    def __init__(
        self,
        num_blocks: int = 5,
        ops: Sequence[str] = OPS,
        combines: Sequence[str] = ("add", "concat"),
    ):
        self.num_blocks = check_int("num_blocks", num_blocks, minimum=1)
        self.ops = self._check_names("ops", ops, OPS)
        self.combines = self._check_names("combines", combines, COMBINES)
        self._decisions = self._build_decisions()

    @staticmethod
    def _check_names(what: str, names: Sequence[str], accepted: Sequence[str]) -> tuple[str, ...]:
        if isinstance(names, (str, bytes)) or not isinstance(names, Sequence) or not names:
            raise ValueError(
                f"`{what}` must be a non-empty list of names from: {', '.join(accepted)}. "
                f"Received: {what}={names!r}"
            )
        for name in names:
            if name not in accepted:
                raise ValueError(f"Unknown entry {name!r} in `{what}`. Accepted: {', '.join(accepted)}")
        if len(set(names)) != len(names):
            raise ValueError(f"`{what}` must not repeat a name (each option once). Received: {what}={list(names)}")
        return tuple(names)

    def _build_decisions(self) -> list[tuple[str, tuple]]:
        decisions = []
        for cell_type in CELL_TYPES:
            for b in range(self.num_blocks):
                # Block b reads the two cell inputs or the output of any earlier block.
                states = tuple(range(NUM_CELL_INPUTS + b))
                options = (states, states, self.ops, self.ops, self.combines)
                for field, values in zip(FIELDS, options):
                    decisions.append((f"{cell_type}_b{b}_{field}", values))
        return decisions

    def _count_hint(self) -> str:
        return f" (10 per block pair, B={self.num_blocks})"

    # --- the genotype --------------------------------------------------------------------
    def architecture_key(self, values: Mapping[str, Any]) -> str:
        """The reward cache's key: the genotype id after putting each `add` block's two
        (input, op) pairs in a fixed order.

        A sum does not depend on the order of its terms, so the two orders are one
        architecture (the controller can sample either, and would train it twice). A
        `concat` block keeps its order: it fixes the channel order the next layers see.
        """
        genotype = self.decode(values)
        cells = []
        for cell in (genotype.normal, genotype.reduction):
            blocks = []
            for block in cell.blocks:
                if block.combine == "add":
                    pairs = sorted(zip(block.inputs, block.ops))
                    block = Block(tuple(i for i, _ in pairs), tuple(o for _, o in pairs), block.combine)
                blocks.append(block)
            cells.append(CellGenotype(tuple(blocks), cell.cell_type))
        return Genotype(*cells).id

    def decode(self, values: Mapping[str, Any]) -> Genotype:
        """keras-tuner values -> Genotype (default output: the loose ends are concatenated)."""
        clean = self.from_indices(self.to_indices(values))  # validated, plain Python types
        rows: dict[str, list[Block]] = {cell_type: [] for cell_type in CELL_TYPES}
        for cell_type in CELL_TYPES:
            for b in range(self.num_blocks):
                i1, i2, o1, o2, comb = (clean[f"{cell_type}_b{b}_{field}"] for field in FIELDS)
                rows[cell_type].append(Block((i1, i2), (o1, o2), comb))
        return Genotype(
            CellGenotype(tuple(rows["normal"]), "normal"),
            CellGenotype(tuple(rows["reduction"]), "reduction"),
        )

    def encode(self, genotype: Genotype, ignore_concat: bool = False) -> dict[str, Any]:
        """Genotype -> keras-tuner values; ValueError if the genotype is not in this space.

        The space's cells concatenate their loose ends, so a genotype that lists other
        output states (NASNet-A as transcribed from TF-slim concatenates h_{i-1} too) is a
        different network from any point of the space and is rejected by default.
        `ignore_concat=True` encodes its blocks only, e.g. to start a search near NASNet-A;
        `decode` of the result then concatenates the loose ends instead.
        """
        if not isinstance(genotype, Genotype):
            raise ValueError(f"Expected a Genotype. Received: {type(genotype).__name__}")
        if genotype.num_blocks != self.num_blocks:
            raise ValueError(
                f"The genotype has B={genotype.num_blocks} blocks per cell; this search space has "
                f"B={self.num_blocks}"
            )
        values: dict[str, Any] = {}
        for cell_type in CELL_TYPES:
            cell = getattr(genotype, cell_type)
            if not ignore_concat and tuple(cell.concat) != tuple(cell.loose_ends):
                raise ValueError(
                    f"The {cell_type} cell concatenates states {list(cell.concat)}, but cells of this "
                    f"search space concatenate their loose ends {list(cell.loose_ends)}; the genotype is "
                    "outside the space. Pass ignore_concat=True to encode its blocks only"
                )
            for b, block in enumerate(cell.blocks):
                prefix = f"{cell_type}_b{b}_"
                for field, value, accepted in (
                    ("op_1", block.ops[0], self.ops),
                    ("op_2", block.ops[1], self.ops),
                    ("combine", block.combine, self.combines),
                ):
                    if value not in accepted:
                        raise ValueError(
                            f"{cell_type} cell, block {b}: {field} {value!r} is not in this search space. "
                            f"Accepted: {', '.join(accepted)}"
                        )
                values[prefix + "input_1"], values[prefix + "input_2"] = block.inputs
                values[prefix + "op_1"], values[prefix + "op_2"] = block.ops
                values[prefix + "combine"] = block.combine
        return {name: values[name] for name in self.names}

    # --- storage -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"num_blocks": self.num_blocks, "ops": list(self.ops), "combines": list(self.combines)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "SearchSpace":
        if not isinstance(data, Mapping):
            raise ValueError(f"A search space must be a mapping. Received: {data!r}")
        unknown = set(data) - {"num_blocks", "ops", "combines"}
        if unknown:
            raise ValueError(f"Unknown search-space keys {sorted(unknown)}. Accepted: num_blocks, ops, combines")
        return cls(
            num_blocks=data.get("num_blocks", 5),
            ops=tuple(data.get("ops", OPS)),
            combines=tuple(data.get("combines", ("add", "concat"))),
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SearchSpace) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash((self.num_blocks, self.ops, self.combines))

    def __repr__(self) -> str:
        return f"SearchSpace(num_blocks={self.num_blocks}, ops={list(self.ops)}, combines={list(self.combines)})"
