"""Argument checks with one wording: the error names the argument, what is accepted and
what was received (keras' `Received: name=value` convention).

`bool` is rejected where an integer is expected (`True` is an `int` in Python, and
`filters=True` is always a mistake).
"""

from __future__ import annotations

import math
from typing import Iterable

__all__ = ["check_int", "check_number", "check_choice"]


def _bounds(minimum, maximum) -> str:
    if minimum is not None and maximum is not None:
        return f" in {minimum}..{maximum}"
    if minimum is not None:
        return f" >= {minimum}"
    if maximum is not None:
        return f" <= {maximum}"
    return ""


def check_int(name: str, value, *, minimum: int | None = None, maximum: int | None = None,
              allow_none: bool = False, hint: str = "") -> int | None:
    """Return `value` if it is an int (not a bool) within the bounds, else raise ValueError."""
    if value is None and allow_none:
        return None
    ok = isinstance(value, int) and not isinstance(value, bool)
    ok = ok and (minimum is None or value >= minimum) and (maximum is None or value <= maximum)
    if not ok:
        what = f"an integer{_bounds(minimum, maximum)}" + (" or None" if allow_none else "")
        raise ValueError(f"`{name}` must be {what}{hint}. Received: {name}={value!r}")
    return value


def check_number(name: str, value, *, minimum: float | None = None, maximum: float | None = None,
                 exclusive_minimum: bool = False, allow_none: bool = False, hint: str = "") -> float | None:
    """Return `value` as a float if it is a finite real number within the bounds, else raise."""
    if value is None and allow_none:
        return None
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok and minimum is not None:
        ok = value > minimum if exclusive_minimum else value >= minimum
    if ok and maximum is not None:
        ok = value <= maximum
    if not ok:
        low = "" if minimum is None else (f" > {minimum}" if exclusive_minimum else f" >= {minimum}")
        high = "" if maximum is None else (f" and <= {maximum}" if low else f" <= {maximum}")
        what = f"a finite number{low}{high}" + (" or None" if allow_none else "")
        raise ValueError(f"`{name}` must be {what}{hint}. Received: {name}={value!r}")
    return float(value)


def check_choice(name: str, value, choices: Iterable, *, hint: str = ""):
    """Return `value` if it is one of `choices`, else raise ValueError listing them."""
    choices = list(choices)
    if value not in choices:
        listed = ", ".join(repr(c) for c in choices)
        raise ValueError(f"`{name}` must be one of {listed}{hint}. Received: {name}={value!r}")
    return value
