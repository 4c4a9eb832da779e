"""The shared keyed work queue: dedup, one worker per key, timers, back-off, timeouts and shutdown.

Time is a fake clock the test moves; blocking tests wait until their getters are parked in the
queue (seen through the clock they read just before waiting), then act, then join the threads.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest

from core.workqueue import WorkQueue

JOIN = 10.0  # only a guard against a hung test; no assertion depends on it


class Clock:
    """A clock that stands still until told; each read can be announced to a waiting test."""

    def __init__(self) -> None:
        self.now = 0.0
        self.then: float | None = None  # where the clock jumps right after its next read
        self.reads = threading.Semaphore(0)

    def __call__(self) -> float:
        now = self.now
        if self.then is not None:
            self.now, self.then = self.then, None
        self.reads.release()
        return now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def q(clock: Clock) -> WorkQueue:
    return WorkQueue("t", base_delay=1.0, max_delay=8.0, clock=clock)


def drain(q: WorkQueue) -> list[str]:
    """Every key ready now, each marked done."""
    keys = []
    while (key := q.get(timeout=0)) is not None:
        keys.append(key)
        q.done(key)
    return keys


def start_getters(q: WorkQueue, clock: Clock, n: int) -> tuple[list[threading.Thread], list[str | None]]:
    """`n` threads blocked in `get()`: each read the clock under the queue's lock, so once the test
    has seen `n` reads and can take the lock itself (any call does), all of them are waiting."""
    results: list[str | None] = []
    lock = threading.Lock()

    def getter() -> None:
        key = q.get()
        with lock:
            results.append(key)

    while clock.reads.acquire(blocking=False):  # forget earlier reads
        pass
    threads = [threading.Thread(target=getter) for _ in range(n)]
    for t in threads:
        t.start()
    for _ in range(n):
        assert clock.reads.acquire(timeout=JOIN)
    return threads, results


def join(threads: list[threading.Thread]) -> None:
    for t in threads:
        t.join(JOIN)
        assert not t.is_alive()


# --- dedup and one worker per key ------------------------------------------------------------------

def test_a_key_waits_once_in_the_order_first_added(q: WorkQueue) -> None:
    for key in ("a", "b", "a", "c", "b"):
        q.add(key)
    assert len(q) == 3
    assert drain(q) == ["a", "b", "c"]
    assert len(q) == 0


def test_a_key_being_processed_is_not_handed_out_again_until_done(q: WorkQueue) -> None:
    q.add("a")
    assert q.get(timeout=0) == "a"
    q.add("a")
    q.add("a")
    assert len(q) == 0 and q.get(timeout=0) is None  # not to a second worker
    q.done("a")
    assert q.get(timeout=0) == "a"  # the adds meanwhile: once more
    q.done("a")
    assert q.get(timeout=0) is None


def test_done_without_an_add_meanwhile_does_not_requeue(q: WorkQueue) -> None:
    q.add("a")
    assert q.get(timeout=0) == "a"
    q.done("a")
    assert len(q) == 0


def test_many_workers_never_share_a_key_and_the_last_add_is_always_processed() -> None:
    q = WorkQueue("stress")
    keys = [f"k{i}" for i in range(5)]
    lock = threading.Condition()
    added = dict.fromkeys(keys, 0)  # how many adds each key has had
    seen = dict.fromkeys(keys, 0)  # the add count a worker last started from
    busy: set[str] = set()
    overlaps: list[str] = []

    def worker() -> None:
        while (key := q.get()) is not None:
            with lock:
                if key in busy:
                    overlaps.append(key)
                busy.add(key)
                seen[key] = added[key]
            with lock:
                busy.discard(key)
                lock.notify_all()
            q.done(key)

    workers = [threading.Thread(target=worker) for _ in range(4)]
    for t in workers:
        t.start()
    for i in range(2000):
        key = keys[i % len(keys)]
        with lock:
            added[key] += 1
        q.add(key)
    with lock:
        assert lock.wait_for(lambda: seen == added, timeout=JOIN), (seen, added)
    q.shutdown()
    join(workers)
    assert overlaps == []


# --- timers ----------------------------------------------------------------------------------------

def test_add_after_waits_for_the_clock(q: WorkQueue, clock: Clock) -> None:
    q.add_after("a", 5)
    assert len(q) == 0 and q.get(timeout=0) is None
    clock.now = 4.9
    assert q.get(timeout=0) is None
    clock.now = 5
    assert q.get(timeout=0) == "a"


def test_add_after_keeps_only_the_earliest_timer_of_a_key(q: WorkQueue, clock: Clock) -> None:
    q.add_after("c", 5)
    q.add_after("c", 1)  # earlier: replaces the timer at 5
    q.add_after("c", 9)  # later: ignored
    clock.now = 1
    assert drain(q) == ["c"]
    clock.now = 100
    assert drain(q) == []  # the replaced and the ignored timer never fire


def test_a_new_timer_after_one_fired(q: WorkQueue, clock: Clock) -> None:
    q.add_after("a", 1)
    clock.now = 1
    assert drain(q) == ["a"]
    q.add_after("a", 1)
    clock.now = 1.5
    assert drain(q) == []
    clock.now = 2
    assert drain(q) == ["a"]


def test_add_after_without_a_delay_adds_now(q: WorkQueue) -> None:
    q.add_after("a", 0)
    q.add_after("b", -3)  # a due time already past
    assert drain(q) == ["a", "b"]


def test_a_timer_firing_for_a_queued_key_does_not_queue_it_twice(q: WorkQueue, clock: Clock) -> None:
    q.add("a")
    q.add_after("a", 1)
    clock.now = 1
    assert drain(q) == ["a"]


def test_a_timer_firing_for_a_busy_key_queues_it_after_done(q: WorkQueue, clock: Clock) -> None:
    q.add("a")
    assert q.get(timeout=0) == "a"
    q.add_after("a", 1)
    clock.now = 1
    assert q.get(timeout=0) is None
    q.done("a")
    assert drain(q) == ["a"]


def test_timers_fire_in_due_order(q: WorkQueue, clock: Clock) -> None:
    q.add_after("late", 3)
    q.add_after("early", 1)
    q.add_after("middle", 2)
    clock.now = 3
    assert drain(q) == ["early", "middle", "late"]


# --- back-off --------------------------------------------------------------------------------------

def test_rate_limited_adds_back_off_exponentially_per_key_to_the_cap(q: WorkQueue, clock: Clock) -> None:
    delays = []
    for _ in range(6):
        start = clock.now
        q.add_rate_limited("x")
        clock.now = start + 0.5
        while q.get(timeout=0) != "x":  # the first time at which "x" is ready, in half seconds
            clock.now += 0.5
        q.done("x")
        delays.append(clock.now - start)
    assert delays == [1, 2, 4, 8, 8, 8]  # base 1, doubled, at most 8
    assert q.failures("x") == 6
    assert q.failures("y") == 0  # per key


def test_forget_starts_the_back_off_over(q: WorkQueue, clock: Clock) -> None:
    q.add_rate_limited("x")
    q.add_rate_limited("x")
    assert q.failures("x") == 2
    q.forget("x")
    assert q.failures("x") == 0
    start = clock.now = 10.0
    q.add_rate_limited("x")
    clock.now = start + 1
    assert drain(q) == ["x"]


def test_a_rate_limited_key_that_is_already_queued_is_not_queued_twice(q: WorkQueue, clock: Clock) -> None:
    q.add("x")
    q.add_rate_limited("x")
    assert q.get(timeout=0) == "x"
    clock.now = 1
    assert q.get(timeout=0) is None  # the back-off timer fired while "x" was busy
    q.done("x")
    assert drain(q) == ["x"]


# --- get and its timeout ---------------------------------------------------------------------------

def scripted(*times: float) -> Callable[[], float]:
    """A clock that reads `times` one after the other (a test fails if the queue reads it more often)."""
    it: Iterator[float] = iter(times)
    return lambda: next(it)


def test_get_returns_none_once_its_timeout_has_passed_on_the_queue_clock() -> None:
    q = WorkQueue(clock=scripted(0.0, 10.0))  # the deadline is read at 0, the queue looked at at 10
    assert q.get(timeout=1.0) is None


def test_get_returns_a_timer_that_falls_due_within_its_timeout() -> None:
    q = WorkQueue(clock=scripted(0.0, 1.0, 3.0))  # add_after at 0; get: deadline at 1 + 5, looks at 3
    q.add_after("a", 3)
    assert q.get(timeout=5.0) == "a"


def wake_by_add(q: WorkQueue, clock: Clock) -> None:
    q.add("a")


def wake_by_an_earlier_timer(q: WorkQueue, clock: Clock) -> None:
    clock.then = 5  # add_after reads 0 (due at 0.5), the woken getter reads 5
    q.add_after("a", 0.5)


def wake_by_done(q: WorkQueue, clock: Clock) -> None:
    q.done("busy")  # it was added again while busy


@pytest.mark.parametrize(("wake", "key"), [(wake_by_add, "a"), (wake_by_an_earlier_timer, "a"), (wake_by_done, "busy")])
def test_a_blocked_get_wakes(q: WorkQueue, clock: Clock, wake: Callable[[WorkQueue, Clock], None], key: str) -> None:
    q.add("busy")
    assert q.get(timeout=0) == "busy"
    q.add("busy")
    threads, results = start_getters(q, clock, 1)
    wake(q, clock)
    join(threads)
    assert results == [key]


# --- shutdown --------------------------------------------------------------------------------------

def test_shutdown_wakes_every_getter(q: WorkQueue, clock: Clock) -> None:
    threads, results = start_getters(q, clock, 3)
    q.shutdown()
    join(threads)
    assert results == [None, None, None]


def test_after_shutdown_get_returns_none_at_once_and_adds_are_ignored(q: WorkQueue, clock: Clock) -> None:
    q.add("waiting")
    q.add("busy")
    assert q.get(timeout=0) == "waiting"
    q.add("waiting")
    q.add_after("timer", 1)
    q.shutdown()
    assert q.get() is None  # no timeout and keys ready or due: still None, at once
    q.add("new")
    q.add_after("later", 1)
    q.add_rate_limited("failed")
    clock.now = 10
    q.done("waiting")
    assert q.get() is None and q.get(timeout=5) is None
