"""The tarpit: a client's first refusal is answered at once, the next ones while its
Retry-After lasts are held back, and only so many are held at once."""

from __future__ import annotations

import asyncio

from licentia.server.rate_limits.tarpit import Tarpit


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_first_refusal_is_at_once_and_the_next_are_held_until_retry_after_passed() -> None:
    clock = Clock()
    tarpit = Tarpit(2.0, max_held=10, clock=clock)
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
        tarpit = Tarpit(5.0, max_held=2, sleep=sleep)
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
