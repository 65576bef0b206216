"""The architecture of a NASNet cell pair as one immutable, validated value.

A `Genotype` is what the search produces, what the model builder consumes and what is
written to disk, so every part of the package speaks about architectures through it:
the controller's decisions decode into it, keras-tuner values round-trip through it,
cells carry it in their `get_config`, and JSON files hold its `to_dict()`.

Hidden-state numbering follows TF-slim's `nasnet_utils`: state 0 is the (1x1-projected)
current cell input h_i, state 1 the adjusted previous input h_{i-1}, and block b
(0-based) appends state 2 + b.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from typing import Any, Iterable, Mapping, Sequence

from nasnet_keras import published_cells
from nasnet_keras.checks import check_int
from nasnet_keras.fileio import write_text

# The paper's 13 operations (Sec. 3), under the names used everywhere in this package.
# The layer factories for these live in `nasnet_keras.ops`; the names live here so that
# code which only reasons about architectures (controller, oracle) needs no Keras layers.
OPS: tuple[str, ...] = (
    "identity",
    "conv_1x3_3x1",
    "conv_1x7_7x1",
    "dil_conv_3x3",
    "avg_pool_3x3",
    "max_pool_3x3",
    "max_pool_5x5",
    "max_pool_7x7",
    "conv_1x1",
    "conv_3x3",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "sep_conv_7x7",
)

# "add" and "concat" are NASNet-A's search space; the two normalised sums are the extra
# combine options of NASNet-B/C (App. B).
COMBINES: tuple[str, ...] = ("add", "concat", "add_layernorm", "add_instancenorm")

NUM_CELL_INPUTS = 2


@dataclasses.dataclass(frozen=True)
class Block:
    """One block: two hidden-state indices, one op for each, and how to combine them."""

    inputs: tuple[int, int]
    ops: tuple[str, str]
    combine: str = "add"

    def to_dict(self) -> dict[str, Any]:
        return {"inputs": list(self.inputs), "ops": list(self.ops), "combine": self.combine}


def _as_pair(value: Any, what: str, where: str) -> tuple:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != 2:
        raise ValueError(f"{where}: `{what}` must be a pair of two values. Received: {what}={value!r}")
    return tuple(value)


@dataclasses.dataclass(frozen=True)
class CellGenotype:
    """The B blocks of one cell type (Normal or Reduction), validated on construction."""

    blocks: tuple[Block, ...]
    cell_type: str = "normal"
    # States concatenated into the cell output. By default (None) the loose ends, the
    # paper's rule that found architectures use, resolved on construction. A cell may list
    # them explicitly: TF-slim's NASNet-A Normal cell also concatenates h_{i-1} although
    # blocks read it (`used_hiddenstates = [1, 0, 0, 0, 0, 0, 0]`), which is what
    # keras.applications implements and its weights expect.
    concat: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if self.cell_type not in ("normal", "reduction"):
            raise ValueError(
                f"`cell_type` must be 'normal' or 'reduction'. Received: cell_type={self.cell_type!r}"
            )
        if not isinstance(self.blocks, tuple):
            object.__setattr__(self, "blocks", tuple(self.blocks))
        if len(self.blocks) < 1:
            raise ValueError(f"A {self.cell_type} cell needs at least one block. Received: 0 blocks")
        for b, block in enumerate(self.blocks):
            where = f"{self.cell_type} cell, block {b}"
            if not isinstance(block, Block):
                raise ValueError(f"{where}: expected a `Block`. Received: {block!r}")
            num_states = NUM_CELL_INPUTS + b
            for side, index in zip(("first", "second"), block.inputs):
                check_int(f"{side} input", index, minimum=0, maximum=num_states - 1, where=where,
                          hint=" (a hidden-state index: the two cell inputs and the outputs of earlier blocks)")
            for side, op in zip(("first", "second"), block.ops):
                if op not in OPS:
                    raise ValueError(f"{where}: unknown {side} op {op!r}. Accepted ops: {', '.join(OPS)}")
            if block.combine not in COMBINES:
                raise ValueError(
                    f"{where}: unknown combine method {block.combine!r}. Accepted: {', '.join(COMBINES)}"
                )
        if self.concat is None:
            # Resolve the default now so that equality and the canonical form do not
            # depend on whether the concatenation was spelled out.
            object.__setattr__(self, "concat", self.loose_ends)
        else:
            self._validate_concat()

    def _validate_concat(self) -> None:
        states = self.concat
        if isinstance(states, (str, bytes)) or not hasattr(states, "__iter__"):
            raise ValueError(f"{self.cell_type} cell: `concat` must be a list of state indices. Received: {states!r}")
        states = tuple(states)
        object.__setattr__(self, "concat", states)
        where = f"{self.cell_type} cell"
        if not states:
            raise ValueError(f"{where}: `concat` must name at least one state")
        for index in states:
            check_int("concat", index, minimum=0, maximum=self.num_states - 1, where=where,
                      hint=" (a state index; one of them)")
        if len(set(states)) != len(states) or list(states) != sorted(states):
            raise ValueError(f"{where}: `concat` must be strictly increasing indices. Received: {list(states)}")
        dead = [i for i in self.loose_ends if i >= NUM_CELL_INPUTS and i not in states]
        if dead:
            raise ValueError(
                f"{where}: block outputs {dead} are read by no block and so must be in `concat` "
                f"(else their blocks are dead code). Received: concat={list(states)}"
            )

    @property
    def num_blocks(self) -> int:
        return len(self.blocks)

    @property
    def num_states(self) -> int:
        return NUM_CELL_INPUTS + self.num_blocks

    @property
    def loose_ends(self) -> tuple[int, ...]:
        """States that no block reads, cell inputs included (as in TF-slim)."""
        used = {index for block in self.blocks for index in block.inputs}
        return tuple(i for i in range(self.num_states) if i not in used)

    def to_dict(self) -> dict[str, Any]:
        return {"blocks": [block.to_dict() for block in self.blocks], "concat": list(self.concat)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], cell_type: str = "normal") -> "CellGenotype":
        if not isinstance(data, Mapping) or "blocks" not in data:
            raise ValueError(
                f"A {cell_type} cell must be a mapping with a 'blocks' list. Received: {data!r}"
            )
        blocks = []
        for b, raw in enumerate(data["blocks"]):
            where = f"{cell_type} cell, block {b}"
            if not isinstance(raw, Mapping):
                raise ValueError(f"{where}: expected a mapping with 'inputs', 'ops', 'combine'. Received: {raw!r}")
            unknown = set(raw) - {"inputs", "ops", "combine"}
            if unknown or "inputs" not in raw or "ops" not in raw:
                raise ValueError(
                    f"{where}: expected keys 'inputs', 'ops' and optionally 'combine'. Received keys: {sorted(raw)}"
                )
            blocks.append(
                Block(
                    inputs=_as_pair(raw["inputs"], "inputs", where),
                    ops=_as_pair(raw["ops"], "ops", where),
                    combine=raw.get("combine", "add"),
                )
            )
        unknown = set(data) - {"blocks", "concat"}
        if unknown:
            raise ValueError(f"{cell_type} cell: unknown keys {sorted(unknown)}. Accepted: blocks, concat")
        concat = data.get("concat")
        return cls(tuple(blocks), cell_type=cell_type, concat=None if concat is None else tuple(concat))

    def describe(self) -> str:
        parts = []
        for b, block in enumerate(self.blocks):
            (i, j), (op_i, op_j) = block.inputs, block.ops
            sign = {"add": "+", "concat": "||", "add_layernorm": "+LN", "add_instancenorm": "+IN"}[block.combine]
            parts.append(f"s{NUM_CELL_INPUTS + b} = {op_i}(s{i}) {sign} {op_j}(s{j})")
        return "; ".join(parts) + f"; out = concat{list(self.concat)}"


@dataclasses.dataclass(frozen=True)
class Genotype:
    """A Normal cell and a Reduction cell: the complete searched architecture.

    `name` is a label only; it is excluded from the canonical form, so two genotypes with
    the same cells have the same `id` whatever they are called.
    """

    normal: CellGenotype
    reduction: CellGenotype
    name: str | None = dataclasses.field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.normal.cell_type != "normal" or self.reduction.cell_type != "reduction":
            raise ValueError(
                "Genotype(normal=..., reduction=...) expects a normal and a reduction CellGenotype. "
                f"Received: normal.cell_type={self.normal.cell_type!r}, "
                f"reduction.cell_type={self.reduction.cell_type!r}"
            )
        if self.normal.num_blocks != self.reduction.num_blocks:
            raise ValueError(
                "The Normal and Reduction cells must have the same number of blocks B. Received: "
                f"normal has {self.normal.num_blocks}, reduction has {self.reduction.num_blocks}"
            )

    @property
    def num_blocks(self) -> int:
        return self.normal.num_blocks

    @classmethod
    def from_blocks(
        cls,
        normal: Iterable[Sequence],
        reduction: Iterable[Sequence],
        name: str | None = None,
        concat: Mapping[str, Sequence[int]] | None = None,
    ) -> "Genotype":
        """Build from rows `(input_1, input_2, op_1, op_2[, combine])`, one per block.

        `concat` optionally spells out each cell's concatenated states, keyed like the
        JSON form: `{"normal": (...), "reduction": (...)}` (a missing key: the loose ends).
        """
        concat = dict(concat or {})
        unknown = set(concat) - {"normal", "reduction"}
        if unknown:
            raise ValueError(f"`concat` keys must be 'normal' and/or 'reduction'. Received: {sorted(unknown)}")

        def cell(rows: Iterable[Sequence], cell_type: str, concat) -> CellGenotype:
            blocks = []
            for b, row in enumerate(rows):
                if len(row) not in (4, 5):
                    raise ValueError(
                        f"{cell_type} cell, block {b}: a row is (input_1, input_2, op_1, op_2[, combine]). "
                        f"Received: {row!r}"
                    )
                blocks.append(Block((row[0], row[1]), (row[2], row[3]), row[4] if len(row) == 5 else "add"))
            return CellGenotype(tuple(blocks), cell_type, None if concat is None else tuple(concat))

        return cls(cell(normal, "normal", concat.get("normal")), cell(reduction, "reduction", concat.get("reduction")),
                   name=name)

    # --- serialisation -------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The one on-disk form (genotype JSON files, model cards, retrain.json, summaries).

        `id` and `num_blocks` are derived, and checked by `from_dict` when present, so an
        edited or corrupted file is caught.
        """
        data: dict[str, Any] = {"normal": self.normal.to_dict(), "reduction": self.reduction.to_dict()}
        if self.name is not None:
            data["name"] = self.name
        data["id"] = self.id
        data["num_blocks"] = self.num_blocks
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Genotype":
        if not isinstance(data, Mapping) or "normal" not in data or "reduction" not in data:
            raise ValueError(
                "A genotype must be a mapping with 'normal' and 'reduction' cells. "
                f"Received: {str(data)[:200]!r}"
            )
        unknown = set(data) - {"normal", "reduction", "name", "id", "num_blocks"}
        if unknown:
            raise ValueError(f"Unknown genotype keys {sorted(unknown)}. Accepted: normal, reduction, name, id, num_blocks")
        genotype = cls(
            CellGenotype.from_dict(data["normal"], "normal"),
            CellGenotype.from_dict(data["reduction"], "reduction"),
            name=data.get("name"),
        )
        if "num_blocks" in data and data["num_blocks"] != genotype.num_blocks:
            raise ValueError(
                f"The genotype declares num_blocks={data['num_blocks']!r} but its cells have "
                f"{genotype.num_blocks} blocks"
            )
        if "id" in data and data["id"] != genotype.id:
            raise ValueError(
                f"The genotype's stored id {data['id']!r} does not match its cells (id {genotype.id!r}): "
                "the file was edited or corrupted"
            )
        return genotype

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "Genotype":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"Not a genotype JSON document: {error}") from None
        return cls.from_dict(data)

    def save(self, path: str) -> None:
        """Write the JSON form atomically (a resume or a reader never sees half a file)."""
        write_text(path, self.to_json() + "\n")

    @classmethod
    def load(cls, path: str) -> "Genotype":
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except UnicodeDecodeError:
            raise ValueError(f"{path}: not a genotype JSON file (not UTF-8 text)") from None
        try:
            return cls.from_json(text)
        except ValueError as error:
            raise ValueError(f"{path}: {error}") from None

    # --- identity ------------------------------------------------------------------------
    @property
    def id(self) -> str:
        """Stable 10-hex-digit id: a hash of the canonical (sorted, name-free) JSON form."""
        canonical = json.dumps(
            {"normal": self.normal.to_dict(), "reduction": self.reduction.to_dict()},
            sort_keys=True,
            separators=(",", ":"),
        )
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:10]

    def __str__(self) -> str:
        title = f"{self.name} " if self.name else ""
        return (
            f"Genotype {title}[{self.id}], B={self.num_blocks}\n"
            f"  normal:    {self.normal.describe()}\n"
            f"  reduction: {self.reduction.describe()}"
        )


# The published cells (`nasnet_keras.published_cells`), built once, by registered name.
NAMED_GENOTYPES: dict[str, Genotype] = {
    key: Genotype.from_blocks(**rows) for key, rows in published_cells.PUBLISHED.items()
}
NASNET_A = NAMED_GENOTYPES["nasnet_a"]


def as_genotype(value: Any) -> Genotype:
    """Accept a Genotype, its dict, a JSON string, a JSON file path or a registered name."""
    if isinstance(value, Genotype):
        return value
    if isinstance(value, Mapping):
        return Genotype.from_dict(value)
    if isinstance(value, str):
        if value in NAMED_GENOTYPES:
            return NAMED_GENOTYPES[value]
        if value.lstrip().startswith("{"):
            return Genotype.from_json(value)
        if os.path.exists(value):
            return Genotype.load(value)
        raise ValueError(
            f"Unknown genotype {value!r}: not a registered name ({', '.join(NAMED_GENOTYPES)}), "
            "a JSON document, nor an existing JSON file"
        )
    raise ValueError(f"Expected a Genotype, dict, JSON string, file path or name. Received: {type(value).__name__}")
