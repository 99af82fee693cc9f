"""The engine primitives on the transaction-level scheduler."""

import pytest

from sw_model.engine import Engine, Queue, Violation
from sw_model.tlm import TlmEngine


def engine(seed=3, **kw):
    return TlmEngine(seed=seed, jitter_max=0, **kw)


def test_engine_is_abstract():
    with pytest.raises(TypeError):
        Engine(seed=1)


def test_delays_order_tasks_by_cycle_then_by_start():
    e = engine()
    log = []

    async def task(name, d):
        await e.delay(d)
        log.append((e.now(), name))

    async def main():
        e.spawn(task("b", 5), "b")
        e.spawn(task("a", 5), "a")
        e.spawn(task("c", 1), "c")
        await e.delay(10)
    e.run(main())
    assert log == [(1, "c"), (5, "b"), (5, "a")]


def test_event_wait_bound_and_set_before_bound():
    e = engine()
    ev = e.event()
    results = []

    async def waiter(bound):
        results.append((await ev.wait(bound), e.now()))

    async def main():
        e.spawn(waiter(3), "short")
        e.spawn(waiter(50), "long")
        await e.delay(10)
        ev.set()
        await e.delay(100)
        results.append((await ev.wait(1), e.now()))   # already set: at once
    e.run(main())
    assert results == [(False, 3), (True, 10), (True, 110)]


def test_lock_is_fifo_and_exclusive():
    e = engine()
    lock = e.lock()
    inside, order = [], []

    async def user(name):
        async with lock:
            inside.append(name)
            assert len(inside) == 1
            order.append(name)
            await e.delay(3)
            inside.remove(name)

    async def main():
        for n in "xyz":
            e.spawn(user(n), n)
        await e.delay(20)
    e.run(main())
    assert order == ["x", "y", "z"]


def test_wait_for_predicate_with_wake_and_bound():
    e = engine(seed=77)
    ev = e.event()
    box = {"n": 0}

    async def bump():
        for _ in range(3):
            await e.delay(4)
            box["n"] += 1
            ev.set()

    async def main():
        e.spawn(bump(), "bump")
        await e.wait_for(lambda: box["n"] == 3, 100, "three bumps", wake=ev)
        at = e.now()
        await e.wait_for(lambda: box["n"] == 4, 25, "a fourth bump")
        return at
    with pytest.raises(Violation) as info:
        e.run(main())
    v = info.value
    assert v.invariant == "hang" and v.seed == 77 and v.cycle >= 12 + 25
    assert "a fourth bump" in str(v) and "seed 77" in str(v)


def test_run_reports_a_deadlock_as_a_hang():
    e = engine()

    async def main():
        await e.event().wait()
    with pytest.raises(Violation, match="did not finish"):
        e.run(main())


def test_queue_hands_items_in_order():
    e = engine()
    q = Queue(e)
    got = []

    async def consumer():
        while len(got) < 3:
            got.append((await q.get(), e.now()))

    async def main():
        e.spawn(consumer(), "consumer")
        await e.delay(2)
        q.put("a")
        q.put("b")
        await e.delay(5)
        q.put("c")
        await e.delay(1)
    e.run(main())
    assert got == [("a", 2), ("b", 2), ("c", 7)]


def test_jitter_is_reproducible_from_the_seed():
    def trace(seed):
        e = TlmEngine(seed=seed, jitter_max=9)
        stamps = []

        async def main():
            for _ in range(20):
                await e.jitter()
                stamps.append(e.now())
        e.run(main())
        return stamps
    assert trace(5) == trace(5)
    assert trace(5) != trace(6)


def test_awaiting_a_foreign_awaitable_is_an_error():
    e = engine()

    class Foreign:
        def __await__(self):
            yield "not an engine operation"

    async def main():
        await Foreign()
    with pytest.raises(TypeError, match="not an engine operation"):
        e.run(main())
