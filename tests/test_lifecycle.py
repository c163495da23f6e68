"""Stopping a service's tasks: cancel_and_wait finishes tasks that drop a cancellation (as
Python 3.11's asyncio.wait_for does when the awaited call completes at the moment of the cancel,
CPython gh-86296), where one cancel and a gather hang for ever."""

from __future__ import annotations

import asyncio

from sandbox.lifecycle import cancel_and_wait


async def _retrying_loop(swallow: int, counts: dict) -> None:
    """A loop that retries on errors and, like the wait_for race, loses its first `swallow`
    cancellations."""
    while True:
        try:
            await asyncio.sleep(0.01)
        except asyncio.CancelledError:
            counts["cancels"] += 1
            if counts["cancels"] > swallow:
                raise
            asyncio.current_task().uncancel()


def test_a_task_that_drops_a_cancellation_is_cancelled_again_until_it_stops():
    async def main():
        counts = {"cancels": 0}
        stubborn = asyncio.create_task(_retrying_loop(2, counts))
        plain = asyncio.create_task(asyncio.sleep(60))
        failed = asyncio.create_task(asyncio.sleep(0, result=None))
        await asyncio.sleep(0.02)
        await asyncio.wait_for(cancel_and_wait([stubborn, plain, failed], again_every=0.05), 5)
        return counts, stubborn, plain

    counts, stubborn, plain = asyncio.run(main())
    assert stubborn.cancelled() and plain.cancelled()
    assert counts["cancels"] == 3


def test_one_cancel_and_a_gather_would_hang_on_the_same_task():
    """The failure cancel_and_wait exists for, shown: the old way does not finish."""
    async def main():
        counts = {"cancels": 0}
        stubborn = asyncio.create_task(_retrying_loop(1, counts))
        await asyncio.sleep(0.02)
        stubborn.cancel()
        try:
            await asyncio.wait_for(asyncio.gather(stubborn, return_exceptions=True), 0.3)
            return False
        except asyncio.TimeoutError:
            return True
        finally:
            await cancel_and_wait([stubborn])

    assert asyncio.run(main())


def test_errors_of_finished_tasks_are_retrieved_not_raised():
    async def boom():
        raise ValueError("x")

    async def main():
        t = asyncio.create_task(boom())
        await asyncio.sleep(0)
        await cancel_and_wait([t])
        return t

    t = asyncio.run(main())
    assert isinstance(t.exception(), ValueError)


def test_a_slow_stop_names_the_innermost_line_each_task_waits_at(caplog):
    from sandbox import lifecycle

    async def inner():
        await asyncio.sleep(60)

    async def outer():
        await inner()

    async def main():
        t = asyncio.create_task(outer(), name="stuck")
        await asyncio.sleep(0)
        lifecycle._report_slow_stop(None)
        await lifecycle.cancel_and_wait([t])

    with caplog.at_level("WARNING"):
        asyncio.run(main())
    line = next(r.getMessage() for r in caplog.records if "still stopping" in r.getMessage())
    import inspect
    where = f"test_lifecycle.py:{inspect.getsourcelines(inner)[1] + 1}"
    assert "stuck at " in line and where in line, line


def test_the_open_files_limit_is_raised_to_the_hard_one_capped_where_the_os_refuses_more(monkeypatch, caplog):
    import logging
    import sys

    import pytest
    resource = pytest.importorskip("resource")
    from sandbox import lifecycle

    limits = {"now": (256, resource.RLIM_INFINITY)}
    monkeypatch.setattr(resource, "getrlimit", lambda _which: limits["now"])
    monkeypatch.setattr(resource, "setrlimit", lambda _which, value: limits.update(now=value))
    monkeypatch.setattr(sys, "platform", "darwin")      # a Mac: hard unlimited, OPEN_MAX 10240
    assert lifecycle.raise_open_files_limit() == (lifecycle.DARWIN_OPEN_MAX, resource.RLIM_INFINITY)
    monkeypatch.setattr(sys, "platform", "linux")
    limits["now"] = (1024, 524288)
    assert lifecycle.raise_open_files_limit() == (524288, 524288)
    limits["now"] = (256, 512)                           # the hard limit is low: raised, and a warning
    with caplog.at_level(logging.WARNING):
        assert lifecycle.raise_open_files_limit(logging.getLogger("t")) == (512, 512)
    assert "ulimit" in caplog.text


def test_the_open_files_limit_is_the_most_the_system_takes_and_never_lowered(monkeypatch):
    import sys

    import pytest
    resource = pytest.importorskip("resource")
    from sandbox import lifecycle

    limits = {"now": (256, resource.RLIM_INFINITY)}
    most = {"n": 10000}   # a Mac whose kern.maxfilesperproc is below OPEN_MAX

    def setrlimit(_which, value):
        if value[0] > most["n"]:
            raise ValueError("not allowed")
        limits["now"] = value
    monkeypatch.setattr(resource, "getrlimit", lambda _which: limits["now"])
    monkeypatch.setattr(resource, "setrlimit", setrlimit)
    monkeypatch.setattr(sys, "platform", "darwin")
    assert lifecycle.raise_open_files_limit() == (10000, resource.RLIM_INFINITY)
    limits["now"], most["n"] = (256, resource.RLIM_INFINITY), 0   # every value refused: kept as it was
    assert lifecycle.raise_open_files_limit() == (256, resource.RLIM_INFINITY)
    assert limits["now"] == (256, resource.RLIM_INFINITY)
