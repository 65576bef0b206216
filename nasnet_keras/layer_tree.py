"""Walking the layers nested inside a Keras layer or model (cells hold ops, ops hold convs).

Keras 3 has no public accessor for a layer's tracked sub-layers: `Model.layers` lists only
a functional model's own nodes, not the layers inside a `NASNetCell`. Every walk over the
nesting (weights by name, drop-path layers, parameter accounting) goes through `walk`,
the one place that reads the private `_layers` list, so a Keras change touches one line.
"""

from __future__ import annotations

from typing import Iterator


def children(layer) -> list:
    """The layers `layer` tracks directly (its sub-layers), in creation order."""
    return list(getattr(layer, "_layers", []))


def walk(layer) -> Iterator:
    """`layer` and every layer nested inside it, depth first, parents before children."""
    yield layer
    for child in children(layer):
        yield from walk(child)
