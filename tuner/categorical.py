"""A search space of named categorical decisions, for strategies that are not NASNet-specific.

The oracles (PPO, random, evolution) only need a space's decisions as `(name, values)`
pairs, the conversions between keras-tuner values and decision indices, `to_dict` for the
resume check, and an *architecture key*: the id under which two samples count as the
same child (for the reward cache and the benchmark's "distinct architectures trained").
`tuner.space.SearchSpace` (the NASNet cell space) provides all of it through its genotype;
`CategoricalSpace` provides it for any other table of choices, e.g. the NAS-Bench-Graph
space of `tuner.benchmark_tabular`, whose key is that benchmark's isomorphism-aware hash.
Both share `DecisionSpace`: the decisions' views and the values <-> indices conversions,
with one rule for the type of a value and of an index.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Mapping, Sequence

from nasnet_keras.checks import check_int, is_int


class DecisionSpace:
    """What every space of categorical decisions shares; subclasses set `self._decisions`.

    The decisions are `(name, values)` pairs in the order the controller samples them, each
    value an int or a str. This base owns their views (names, softmax sizes, keras-tuner
    hyperparameters) and the two conversions with one rule for both spaces: a value must
    have its option's type (numpy integers count as ints; `True` or `1.0` never pass for
    the option `1`), an index must be an integer (not a bool) in range.
    """

    _decisions: list[tuple[str, tuple]]

    @property
    def decisions(self) -> list[tuple[str, tuple]]:
        """`(name, values)` per decision, in sampling order."""
        return list(self._decisions)

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self._decisions]

    @property
    def sizes(self) -> list[int]:
        """Number of options of each decision: the controller's softmax sizes."""
        return [len(values) for _, values in self._decisions]

    def __len__(self) -> int:
        return len(self._decisions)

    def hyperparameters(self):
        """A `keras_tuner.HyperParameters` with one `Choice` per decision.

        Choices are `ordered=False`: the values are labels (e.g. hidden-state indices), not
        magnitudes, so an oracle that models ordered values (Bayesian optimisation) must not
        interpolate them.
        """
        import keras_tuner  # local: a space itself needs no Keras

        hp = keras_tuner.HyperParameters()
        for name, values in self._decisions:
            hp.Choice(name, list(values), ordered=False)
        return hp

    def _count_hint(self) -> str:
        """Said after the expected number of indices when a list has the wrong length."""
        return ""

    def to_indices(self, values: Mapping[str, Any]) -> list[int]:
        """keras-tuner values -> decision indices. Keys that are not decisions are ignored
        (a trial may carry other hyperparameters, e.g. training ones)."""
        if not isinstance(values, Mapping):
            raise ValueError(f"Expected a mapping of decision name -> value. Received: {type(values).__name__}")
        missing = [name for name, _ in self._decisions if name not in values]
        if missing:
            raise ValueError(
                f"Values miss {len(missing)} decision(s) of this search space, e.g. {missing[:3]}. "
                f"Every one of the {len(self)} decisions is needed to specify an architecture"
            )
        indices = []
        for name, options in self._decisions:
            value = values[name]
            # Same type as the options only: 1.0 or True must not pass for the option 1.
            key = int(value) if is_int(value) else value if isinstance(value, str) else None
            if key is None or key not in options:
                raise ValueError(
                    f"Invalid value for decision {name!r}. Received: {value!r}. "
                    f"Accepted: {', '.join(map(repr, options))}"
                )
            indices.append(options.index(key))
        return indices

    def from_indices(self, indices: Sequence[int]) -> dict[str, Any]:
        """Decision indices -> keras-tuner values."""
        indices = list(indices)
        if len(indices) != len(self._decisions):
            raise ValueError(f"Expected {len(self._decisions)} decision indices{self._count_hint()}. "
                             f"Received: {len(indices)}")
        return {name: options[check_int("index", index, minimum=0, maximum=len(options) - 1,
                                        where=f"decision {name!r}")]
                for (name, options), index in zip(self._decisions, indices)}


class CategoricalSpace(DecisionSpace):
    """Named categorical decisions, each a tuple of int or str values.

    Args:
        name: what the space is (stored with the search, checked on resume).
        decisions: `(name, values)` pairs in the order the controller samples them
            (numpy integers are stored as ints).
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
            if not values or not all(is_int(v) or isinstance(v, str) for v in values) or len(set(values)) != len(values):
                raise ValueError(
                    f"Decision {decision!r} needs distinct int or str values. Received: values={list(values)!r}"
                )
            checked.append((decision, tuple(int(v) if is_int(v) else v for v in values)))
        if not checked or len({n for n, _ in checked}) != len(checked):
            raise ValueError(f"`decisions` must be a non-empty list with unique names. Received: {decisions!r}")
        self.name = name
        self._decisions = checked
        self._key = key

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


def check_space(search_space, kwargs: dict, owner: str) -> DecisionSpace:
    """Validate the space; the oracle's hyperparameters always come from it, never from kwargs."""
    if not isinstance(search_space, DecisionSpace):
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


def check_stored_space(search_space: DecisionSpace, stored: dict, where: str) -> None:
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

