"""Time a call the way every benchmark here does.

After a warm-up, with the garbage collector off (as :mod:`timeit` does: otherwise a full
collection walking a large graph that happens to be alive lands on whichever call is running),
until both a number of runs and a number of seconds are reached. Each run records its wall-clock
time and the process's CPU time: on a shared machine the wall time also counts the waits for a
core, the CPU time does not.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Timing:
    """Seconds per run: wall clock and CPU."""

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        """Median wall-clock seconds."""
        return statistics.median(self.wall)

    @property
    def cpu_median(self) -> float:
        """Median CPU seconds (what a call costs, whatever else runs)."""
        return statistics.median(self.cpu)

    @property
    def best(self) -> float:
        """Fastest wall-clock run."""
        return min(self.wall)


def measure(fn: Callable[[], Any], *, min_runs: int = 15, min_seconds: float = 1.0,
            max_runs: int | None = 2000, warmup: int = 2) -> Timing:
    """Run ``fn`` after ``warmup`` calls until ``min_runs`` and ``min_seconds`` are reached.

    ``max_runs`` stops a fast call early (``None``: no cap).
    """
    for _ in range(warmup):
        fn()
    t = Timing()
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        while (max_runs is None or len(t.wall) < max_runs) and (
            len(t.wall) < min_runs or time.perf_counter() - start < min_seconds
        ):
            c0, t0 = time.process_time(), time.perf_counter()
            fn()
            t.wall.append(time.perf_counter() - t0)
            t.cpu.append(time.process_time() - c0)
    finally:
        gc.enable()
    return t
