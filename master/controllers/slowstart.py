"""Creating many pods in slow-start batches (1, 2, 4, …), so a broken template fails once, not 500 times.

Each batch runs its calls concurrently (concurrent writes share the store's
fsyncs); the next batch, twice as large, starts only if the whole batch
succeeded. Kubernetes' `slowStartBatch` does the same for ReplicaSets, Jobs
and DaemonSets.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

_POOL = ThreadPoolExecutor(max_workers=8, thread_name_prefix="slowstart")


def slow_start(count: int, fn: Callable[[int], None], initial: int = 1) -> tuple[int, Exception | None]:
    """Call `fn(i)` for i in range(count) in growing batches; (calls made, first error).

    After a failed batch no further calls are made: the caller learns how many
    were never attempted as `count - calls made`.
    """
    attempted, batch = 0, min(initial, count)
    while batch > 0:
        futures = [_POOL.submit(fn, attempted + i) for i in range(batch)]
        attempted += batch
        error: Exception | None = None
        for f in futures:
            exc = f.exception()
            if exc is not None and error is None:
                error = exc if isinstance(exc, Exception) else RuntimeError(str(exc))
        if error is not None:
            return attempted, error
        batch = min(2 * batch, count - attempted)
    return attempted, None
