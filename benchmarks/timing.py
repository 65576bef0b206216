"""Timing shared by the benchmarks: the two sides of a comparison measured in one run, interleaved."""

from __future__ import annotations

import time


def time_interleaved(candidates, repeats: int, warmup: int = 2) -> dict[str, list[float]]:
    """{name: [seconds per call]} for `candidates` = [(name, fn), ...].

    The calls run round-robin after `warmup` untimed calls each, so load from other
    processes on a shared machine falls on every path alike.
    """
    for _, fn in candidates:
        for _ in range(warmup):
            fn()
    times = {name: [] for name, _ in candidates}
    for _ in range(repeats):
        for name, fn in candidates:
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return times
