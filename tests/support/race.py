"""Two (or more) workers released at the same instant, to prove what a race leaves behind."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
Worker = Callable[[Callable[[], None]], T]
"""A worker: it gets ready (opens its own session...), calls the `go` it is given, then does the racing work."""


def race(*workers: Worker[T], timeout: float = 120) -> list[T]:
    """Run each worker in its own thread, all let go at once when every one has called `go`.

    Return the workers' results in the order given. Fail if a worker raised (the first error is raised
    again, the others chained to the report) or was still running after `timeout` seconds.
    """
    barrier = threading.Barrier(len(workers), timeout=timeout)
    results: dict[int, T] = {}
    errors: list[BaseException] = []

    def go() -> None:
        barrier.wait()

    def run(index: int, worker: Worker[T]) -> None:
        try:
            results[index] = worker(go)
        except BaseException as exc:  # collected and raised in the test's thread below
            errors.append(exc)
            barrier.abort()  # the others stop waiting for a worker that will never come

    threads = [threading.Thread(target=run, args=(n, w), daemon=True) for n, w in enumerate(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    if errors:
        raise AssertionError(f"{len(errors)} worker(s) raised: {errors!r}") from errors[0]
    assert not any(t.is_alive() for t in threads), f"a worker was still running after {timeout} s"
    return [results[n] for n in range(len(workers))]
