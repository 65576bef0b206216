"""`--set FIELD=VALUE`: the one parser of command-line overrides (`nasnet train`, `nasnet export`).

Values are read as Python literals (`20`, `0.99`, `(0.1, 1.0)`, `'name'`), with the
spellings a shell user types for the three constants (`none`/`null`, `true`/`false`, any
case) and `inf`/`nan` as floats; anything else stays text. Field names may use dashes (`batch-size`). The receiver
checks the values against what it accepts (a recipe against its field types, a model
constructor by its own argument checks), so both commands read `--set` the same way.
"""

from __future__ import annotations

import ast
from typing import Any, Iterable

_CONSTANTS = {"none": None, "null": None, "true": True, "false": False}


def parse_value(text: str) -> Any:
    """One override value: a Python literal, none/true/false in any case, else the text itself."""
    stripped = text.strip()
    if stripped.lower() in _CONSTANTS:
        return _CONSTANTS[stripped.lower()]
    try:
        return ast.literal_eval(stripped)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        pass
    try:  # `inf`, `nan`: numbers, so the receiver's range check names them (not a type error)
        return float(stripped)
    except ValueError:
        return stripped


def parse_overrides(items: Iterable[str] | None) -> dict[str, Any]:
    """`["epochs=10", "ema-momentum=none"]` -> `{"epochs": 10, "ema_momentum": None}`."""
    parsed: dict[str, Any] = {}
    for item in items or ():
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--set expects FIELD=VALUE (e.g. epochs=20). Received: {item!r}")
        parsed[key.strip().replace("-", "_")] = parse_value(text)
    return parsed
