"""A family's line: a place given back goes to the request that waited longest, and a
request given up while it waits takes no place with it."""

from __future__ import annotations

import asyncio

from licentia.domain.errors import ServerBusyError
from licentia.server.rate_limits.families import Family
from licentia.server.rate_limits.lines import Lines

LOGIN = Family.LOGIN
WAIT = 60.0  # seconds: only so that a broken test fails instead of hanging


async def _waiting(lines: Lines, count: int) -> None:
    async with asyncio.timeout(WAIT):
        while len(lines.waiting[LOGIN]) < count:
            await asyncio.sleep(0)


def test_places_given_back_go_to_the_waiting_requests_first_come_first_served() -> None:
    async def line() -> list[str]:
        lines = Lines(2, patience=WAIT)
        served: list[str] = []
        assert lines.take(LOGIN) and lines.take(LOGIN)

        async def request(name: str) -> None:
            assert await lines.enter(LOGIN) is None
            served.append(name)

        first = asyncio.create_task(request("first"))
        await _waiting(lines, 1)
        second = asyncio.create_task(request("second"))
        await _waiting(lines, 2)
        assert not lines.take(LOGIN)  # nobody passes those who wait
        busy = await lines.enter(LOGIN)  # as many wait as there are places, and one more
        assert isinstance(busy, ServerBusyError) and busy.code == "FAMILY_BUSY"
        lines.leave(LOGIN)
        await first
        lines.leave(LOGIN)
        await second
        assert lines.serving[LOGIN] == 2  # both places, held by the two that waited
        lines.leave(LOGIN)
        lines.leave(LOGIN)
        assert lines.serving[LOGIN] == 0 and not lines.waiting[LOGIN]
        return served

    assert asyncio.run(line()) == ["first", "second"]


def test_a_request_given_up_while_it_waits_leaves_no_place_taken() -> None:
    async def line() -> None:
        lines = Lines(1, {LOGIN: 1}, patience=WAIT)
        assert lines.take(LOGIN)
        waiting = asyncio.create_task(lines.enter(LOGIN))
        await _waiting(lines, 1)
        waiting.cancel()  # its client went away before a place came
        await asyncio.gather(waiting, return_exceptions=True)
        assert not lines.waiting[LOGIN]
        lines.leave(LOGIN)
        assert lines.serving[LOGIN] == 0

        # Given up just after a place was handed to it: the place goes on.
        assert lines.take(LOGIN)
        handed = asyncio.create_task(lines.enter(LOGIN))
        await _waiting(lines, 1)
        lines.leave(LOGIN)  # handed over, before the waiting request ran again
        handed.cancel()
        outcome = (await asyncio.gather(handed, return_exceptions=True))[0]
        if outcome is None:
            # It kept the place (Python 3.11's wait_for returns once what it waited
            # for is done): its caller serves the request and gives the place back.
            lines.leave(LOGIN)
        else:
            assert isinstance(outcome, asyncio.CancelledError)
        assert lines.serving[LOGIN] == 0 and lines.take(LOGIN)

    asyncio.run(line())
