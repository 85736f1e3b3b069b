"""Bound what an expensive request may cost: a few computations at once, each within a budget.

Planning analytics (coverage, gaps, service areas, siting) are CPU work of tens of milliseconds
to a few seconds. Their parameters are validated to bounded sets, so any one computation is
bounded; this module bounds how many run at once. They run in worker processes forked from the
server once its districts are loaded (so they share its memory and hold no lock of the server's
interpreter: ``/health`` and the dispatch routes answer as fast while they compute), and a
request that finds every slot taken is answered 503 at once with ``Retry-After`` instead of
queueing. A slot stays taken until its computation ends, even if the client has left or the
budget has passed: the limiter counts work, not requests. Such a computation is not thrown
away: its result lands in the worker's caches and answers the next request with the same
parameters.
"""

from __future__ import annotations

import asyncio
import ctypes
import gzip
import json
import math
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import Response

from geo import District

T = TypeVar("T")

#: How often a waiting request checks whether its client is still there (seconds).
_POLL_S = 0.25


class BusyError(Exception):
    """Every slot for expensive work is taken."""

    def __init__(self, msg: str, *, retry_after: int) -> None:
        super().__init__(msg)
        self.headers = {"Retry-After": str(retry_after)}


class OverBudgetError(Exception):
    """An expensive computation took longer than the request's time budget."""

    def __init__(self, msg: str, *, retry_after: int) -> None:
        super().__init__(msg)
        self.headers = {"Retry-After": str(retry_after)}


class ClientGoneError(Exception):
    """The client closed the connection while its computation ran."""


#: The served districts, as the worker processes inherit them when forked.
_DISTRICTS: dict[str, District] = {}
#: In a worker: each district at the registry version it last computed for.
_SNAPSHOTS: dict[str, District] = {}


def _snapshot(name: str, version: int, positions: Any, teams: Any) -> District:
    """Return the district at a registry version, made from its forked base once per version."""
    current = _SNAPSHOTS.get(name)
    if current is None or current.registry_version != version:
        current = _DISTRICTS[name].with_registry(positions, teams, version=version)
        _SNAPSHOTS[name] = current
    return current


#: Bodies at least this large go gzip-compressed to clients that accept it.
GZIP_MIN_BYTES = 4096


def _in_worker(func: Callable[..., T], registry: tuple[str, int, Any, Any],
               args: tuple[Any, ...], kwargs: dict[str, Any]) -> T:
    return func(_snapshot(*registry), *args, **kwargs)


def _json_in_worker(district: District, func: Callable[..., Any], *args: Any,
                    gzip_ok: bool = False, **kwargs: Any) -> tuple[bytes, bool]:
    """Compute an answer and encode it (and compress it) in the worker, not on the event loop."""
    raw = json.dumps(func(district, *args, **kwargs), ensure_ascii=False, allow_nan=False,
                     separators=(",", ":")).encode("utf-8")
    if gzip_ok and len(raw) >= GZIP_MIN_BYTES:
        return gzip.compress(raw, compresslevel=6), True
    return raw, False


def _die_with(parent: int) -> None:
    """Make a worker end when the server that forked it does, even after a SIGKILL.

    Workers inherit each other's end of the task pipe, so they never see it close; Linux can
    signal them when their parent dies, and a light watch covers other systems.
    """
    try:
        libc = ctypes.CDLL(None)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(0)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def default_slots() -> int:
    """Leave one core to the server itself: at least one slot, one fewer than the cores."""
    return max(1, (os.cpu_count() or 2) - 1)


class WorkLimiter:
    """Run expensive computations in a few worker processes, each within a time budget.

    Parameters
    ----------
    districts
        The served districts, by name; the workers are forked with them loaded.
    slots
        Computations that may run at once (worker processes).
    budget_s
        Seconds a request waits for its computation before it is answered 503.
    """

    def __init__(
        self, districts: Mapping[str, District], *, slots: int, budget_s: float
    ) -> None:
        self.slots = max(1, int(slots))
        self.budget_s = float(budget_s)
        self._free = self.slots
        _DISTRICTS.clear()
        _DISTRICTS.update(districts)
        # Forked, not spawned: the children start with the districts already in memory.
        self._pool = ProcessPoolExecutor(
            max_workers=self.slots, mp_context=multiprocessing.get_context("fork"),
            initializer=_die_with, initargs=(os.getpid(),),
        )
        for _ in range(self.slots):  # start every worker now, before the first request
            self._pool.submit(os.getpid)

    @property
    def free(self) -> int:
        """Slots free now."""
        return self._free

    def _release(self, _: object) -> None:
        self._free += 1

    async def run(
        self, request: Request, func: Callable[..., T], district: District, /, *args: Any,
        **kwargs: Any,
    ) -> T:
        """Run ``func(district, *args, **kwargs)`` in a slot and return its result.

        ``func`` is a module-level function (it is sent to the worker by name) and its answer
        plain data; the worker computes on ``district`` at its registry version.

        Raises
        ------
        BusyError
            If every slot is taken (nothing is started).
        OverBudgetError
            If the computation outlasts the budget (it finishes in the background).
        ClientGoneError
            If the client disconnects while waiting.
        """
        # Only the event loop touches ``_free`` (the done callback runs on the loop too).
        if self._free <= 0:
            msg = f"服务繁忙：{self.slots} 项规划计算正在进行，请稍后再试"
            raise BusyError(msg, retry_after=max(1, math.ceil(self.budget_s / 10)))
        self._free -= 1
        loop = asyncio.get_running_loop()
        future = asyncio.wrap_future(
            # The registry travels with each call (a few hundred rows): workers forked before
            # a registry change compute on the new positions without a restart.
            self._pool.submit(_in_worker, func, (district.name, district.registry_version,
                                                 district.positions, district.teams),
                              args, kwargs)
        )
        future.add_done_callback(self._release)
        deadline = loop.time() + self.budget_s
        while True:
            left = deadline - loop.time()
            if left <= 0:
                msg = f"计算超过 {self.budget_s:.0f} 秒的时限；结果稍后可用，请稍后重试"
                raise OverBudgetError(msg, retry_after=max(1, math.ceil(self.budget_s / 4)))
            done, _ = await asyncio.wait({future}, timeout=min(_POLL_S, left))
            if done:
                return future.result()
            if await request.is_disconnected():
                raise ClientGoneError

    async def answer(
        self, request: Request, func: Callable[..., Any], district: District, /, *args: Any,
        **kwargs: Any,
    ) -> Response:
        """Run ``func`` like :meth:`run` and answer its result as JSON, encoded in the worker.

        Encoding and compressing a large answer is CPU work too; done here it would hold up
        every other request on the event loop.
        """
        gzip_ok = "gzip" in request.headers.get("accept-encoding", "")
        body, gzipped = await self.run(request, _json_in_worker, district, func, *args,
                                       gzip_ok=gzip_ok, **kwargs)
        headers = {"Vary": "Accept-Encoding"}
        if gzipped:
            headers["Content-Encoding"] = "gzip"
        return Response(body, media_type="application/json", headers=headers)

    def close(self) -> None:
        """Stop taking work; running computations finish."""
        self._pool.shutdown(wait=False, cancel_futures=True)
