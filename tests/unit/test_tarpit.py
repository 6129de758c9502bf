"""The tarpit: a client's first refusal is answered at once, the next ones while its
Retry-After lasts are held back (between half their hold and all of it), and only so
many are held at once."""

from __future__ import annotations

import asyncio

from licentia.server.rate_limits.tarpit import Tarpit


def longest(low: float, high: float) -> float:
    """In place of ``random.uniform``: always the whole hold."""
    return high


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_first_refusal_is_at_once_and_the_next_are_held_until_retry_after_passed() -> None:
    clock = Clock()
    tarpit = Tarpit(2.0, max_held=10, clock=clock, uniform=longest)
    assert tarpit.delay("10.0.0.1", retry_after=60) == 0
    assert tarpit.delay("10.0.0.1", retry_after=60) == 2.0
    assert tarpit.delay("10.0.0.2", retry_after=60) == 0  # another address: its first
    clock.now += 59
    assert tarpit.delay("10.0.0.1", retry_after=1) == 1  # never longer than Retry-After
    clock.now += 1.5  # it waited as it was told: a first refusal again
    assert tarpit.delay("10.0.0.1", retry_after=60) == 0


def test_beyond_max_held_refusals_are_answered_at_once() -> None:
    gate = asyncio.Event()
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        await gate.wait()

    async def flood() -> list[float]:
        tarpit = Tarpit(5.0, max_held=2, sleep=sleep, uniform=longest)
        await tarpit.hold("10.0.0.1", 60)  # the first: not held
        held = [asyncio.create_task(tarpit.hold("10.0.0.1", 60)) for _ in range(2)]
        await asyncio.sleep(0)  # both start holding
        assert tarpit.held == 2
        await tarpit.hold("10.0.0.1", 60)  # a third: at once, two are held already
        assert not any(task.done() for task in held)
        gate.set()
        await asyncio.gather(*held)
        assert tarpit.held == 0
        return slept

    assert asyncio.run(flood()) == [5.0, 5.0]


def test_a_hold_of_zero_answers_every_refusal_at_once() -> None:
    tarpit = Tarpit(0.0, max_held=10)
    assert [tarpit.delay("10.0.0.1", retry_after=60) for _ in range(3)] == [0, 0, 0]


def test_held_refusals_wait_between_half_their_hold_and_all_of_it() -> None:
    """Refusals of clients that came together are not all answered together again."""
    asked: list[tuple[float, float]] = []

    def uniform(low: float, high: float) -> float:
        asked.append((low, high))
        return low

    tarpit = Tarpit(2.0, max_held=10, uniform=uniform)
    for address in ("10.0.0.1", "10.0.0.2"):
        assert tarpit.delay(address, retry_after=60) == 0
    assert tarpit.delay("10.0.0.1", retry_after=60) == 1.0
    assert tarpit.delay("10.0.0.2", retry_after=1) == 0.5  # within its Retry-After
    assert asked == [(1.0, 2.0), (0.5, 1.0)]
    spread = Tarpit(2.0, max_held=10)  # the real random spread
    spread.delay("10.0.0.3", retry_after=60)
    delays = {spread.delay("10.0.0.3", retry_after=60) for _ in range(50)}
    assert all(1.0 <= delay <= 2.0 for delay in delays) and len(delays) > 1
