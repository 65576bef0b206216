"""Argument checks with one wording: the error names the argument, what is accepted and
what was received (keras' `Received: name=value` convention).

`bool` is rejected where an integer is expected (`True` is an `int` in Python, and
`filters=True` is always a mistake). `where` prefixes the message with the place the value
belongs to (`"normal cell, block 2"`, `"ChildConfig"`), for values checked deep inside a
structure.
"""

from __future__ import annotations

import math
import numbers
from typing import Iterable

__all__ = ["is_int", "check_int", "check_number", "check_choice"]


def _prefix(where: str) -> str:
    return f"{where}: " if where else ""


def _bounds(minimum, maximum) -> str:
    if minimum is not None and maximum is not None:
        return f" in {minimum}..{maximum}"
    if minimum is not None:
        return f" >= {minimum}"
    if maximum is not None:
        return f" <= {maximum}"
    return ""


def is_int(value) -> bool:
    """The integer rule of `check_int`, as a test: an integer (numpy integers count), not a bool.

    For code that matches a value against typed options (a decision's accepted values) and
    raises its own error listing them."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_int(name: str, value, *, minimum: int | None = None, maximum: int | None = None,
              allow_none: bool = False, hint: str = "", where: str = "") -> int | None:
    """Return `value` as an int if it is an integer (not a bool; numpy integers count) within
    the bounds, else raise ValueError."""
    if value is None and allow_none:
        return None
    ok = is_int(value)
    ok = ok and (minimum is None or value >= minimum) and (maximum is None or value <= maximum)
    if not ok:
        what = f"an integer{_bounds(minimum, maximum)}" + (" or None" if allow_none else "")
        raise ValueError(f"{_prefix(where)}`{name}` must be {what}{hint}. Received: {name}={value!r}")
    return int(value)


def check_number(name: str, value, *, minimum: float | None = None, maximum: float | None = None,
                 exclusive_minimum: bool = False, exclusive_maximum: bool = False, allow_none: bool = False,
                 hint: str = "", where: str = "") -> float | None:
    """Return `value` as a float if it is a finite real number within the bounds, else raise."""
    if value is None and allow_none:
        return None
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if ok and minimum is not None:
        ok = value > minimum if exclusive_minimum else value >= minimum
    if ok and maximum is not None:
        ok = value < maximum if exclusive_maximum else value <= maximum
    if not ok:
        low = "" if minimum is None else (f" > {minimum}" if exclusive_minimum else f" >= {minimum}")
        bound = f"< {maximum}" if exclusive_maximum else f"<= {maximum}"
        high = "" if maximum is None else (f" and {bound}" if low else f" {bound}")
        what = f"a finite number{low}{high}" + (" or None" if allow_none else "")
        raise ValueError(f"{_prefix(where)}`{name}` must be {what}{hint}. Received: {name}={value!r}")
    return float(value)


def check_choice(name: str, value, choices: Iterable, *, hint: str = "", where: str = ""):
    """Return `value` if it is one of `choices`, else raise ValueError listing them."""
    choices = list(choices)
    if value not in choices:
        listed = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{_prefix(where)}`{name}` must be one of {listed}{hint}. Received: {name}={value!r}")
    return value
