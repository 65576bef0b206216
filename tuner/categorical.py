"""A search space of named categorical decisions, for strategies that are not NASNet-specific.

The oracles (PPO, random, evolution) only need a space's decisions as `(name, values)`
pairs, the conversions between keras-tuner values and decision indices, `to_dict` for the
resume check, and an *architecture key*: the id under which two samples count as the
same child (for the reward cache and the benchmark's "distinct architectures trained").
`tuner.space.SearchSpace` (the NASNet cell space) provides all of it through its genotype;
`CategoricalSpace` provides it for any other table of choices, e.g. the NAS-Bench-Graph
space of `tuner.benchmark_tabular`, whose key is that benchmark's isomorphism-aware hash.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Mapping, Sequence


class CategoricalSpace:
    """Named categorical decisions, each a tuple of int or str values.

    Args:
        name: what the space is (stored with the search, checked on resume).
        decisions: `(name, values)` pairs in the order the controller samples them.
        key: maps keras-tuner values to the architecture's id; default: the values as
            canonical JSON (every distinct point is a distinct architecture).
    """

    def __init__(self, name: str, decisions: Sequence[tuple[str, Sequence]],
                 key: Callable[[Mapping[str, Any]], str] | None = None):
        if not isinstance(name, str) or not name:
            raise ValueError(f"`name` must be a non-empty string. Received: name={name!r}")
        checked = []
        for entry in decisions:
            if not (isinstance(entry, (tuple, list)) and len(entry) == 2 and isinstance(entry[0], str)):
                raise ValueError(f"Each decision must be a (name, values) pair. Received: {entry!r}")
            decision, values = entry[0], tuple(entry[1])
            if not values or len(set(values)) != len(values) or not all(
                isinstance(v, (int, str)) and not isinstance(v, bool) for v in values
            ):
                raise ValueError(
                    f"Decision {decision!r} needs distinct int or str values. Received: values={list(values)!r}"
                )
            checked.append((decision, values))
        if not checked or len({n for n, _ in checked}) != len(checked):
            raise ValueError(f"`decisions` must be a non-empty list with unique names. Received: {decisions!r}")
        self.name = name
        self._decisions = checked
        self._key = key

    @property
    def decisions(self) -> list[tuple[str, tuple]]:
        return list(self._decisions)

    @property
    def names(self) -> list[str]:
        return [n for n, _ in self._decisions]

    @property
    def sizes(self) -> list[int]:
        return [len(v) for _, v in self._decisions]

    def __len__(self) -> int:
        return len(self._decisions)

    def hyperparameters(self):
        """A `keras_tuner.HyperParameters` with one unordered `Choice` per decision."""
        import keras_tuner

        hp = keras_tuner.HyperParameters()
        for name, values in self._decisions:
            hp.Choice(name, list(values), ordered=False)
        return hp

    def to_indices(self, values: Mapping[str, Any]) -> list[int]:
        indices = []
        for name, options in self._decisions:
            if name not in values or values[name] not in options or isinstance(values[name], bool):
                raise ValueError(
                    f"Invalid value for decision {name!r}. Received: {values.get(name)!r}. "
                    f"Accepted: {', '.join(map(repr, options))}"
                )
            indices.append(options.index(values[name]))
        return indices

    def from_indices(self, indices: Sequence[int]) -> dict[str, Any]:
        indices = list(indices)
        if len(indices) != len(self._decisions):
            raise ValueError(f"Expected {len(self._decisions)} decision indices. Received: {len(indices)}")
        values = {}
        for (name, options), index in zip(self._decisions, indices):
            if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(options):
                raise ValueError(f"Index for decision {name!r} must be in 0..{len(options) - 1}. Received: {index!r}")
            values[name] = options[index]
        return values

    def architecture_key(self, values: Mapping[str, Any]) -> str:
        clean = self.from_indices(self.to_indices(values))
        return self._key(clean) if self._key else json.dumps(clean, sort_keys=True)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "decisions": [[n, list(v)] for n, v in self._decisions]}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CategoricalSpace) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(json.dumps(self.to_dict()))

    def __repr__(self) -> str:
        return f"CategoricalSpace({self.name!r}, {len(self)} decisions, sizes={self.sizes})"


def architecture_key(space, values: Mapping[str, Any]) -> str:
    """The id of the architecture `values` describe in `space` (NASNet: the genotype id)."""
    if hasattr(space, "architecture_key"):
        return space.architecture_key(values)
    return space.decode(values).id


# --- the checks every oracle over a space makes (shared by tuner.oracles and tuner.evolution) ---
def default_objective(objective):
    import keras_tuner

    return keras_tuner.Objective("val_accuracy", "max") if objective is None else objective


def check_space(search_space, kwargs: dict, owner: str) -> SearchSpace:
    """Validate the space; the oracle's hyperparameters always come from it, never from kwargs."""
    from tuner.space import SearchSpace

    if not isinstance(search_space, (SearchSpace, CategoricalSpace)):
        raise ValueError(
            "`search_space` must be a tuner.space.SearchSpace or tuner.categorical.CategoricalSpace. "
            f"Received: {type(search_space).__name__}"
        )
    if "hyperparameters" in kwargs:
        raise ValueError(
            f"{owner} builds its hyperparameters from `search_space`; do not pass `hyperparameters`. "
            f"Received: hyperparameters={kwargs['hyperparameters']!r}"
        )
    return search_space


def check_stored_space(search_space: SearchSpace, stored: dict, where: str) -> None:
    if stored != search_space.to_dict():
        raise ValueError(
            f"{where} was written for search space {stored}, but this oracle searches "
            f"{search_space.to_dict()}. Resume with the same space, or start a new project "
            "(overwrite=True or another project name)"
        )


def strategy_state(state: dict, key: str, owner: str) -> dict:
    """The oracle's own entry `key` of a keras-tuner oracle state; a project written by another
    strategy (no such entry) is an error naming both, not a search resumed with the wrong oracle."""
    if key not in state:
        raise ValueError(
            f"The oracle state has no {key!r} entry: the project was not written by {owner}. "
            "Resume it with the strategy that created it, or start a new project"
        )
    return state[key]

