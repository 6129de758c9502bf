"""Batches (server/db/batches.py): requests that arrive together share one send."""

from __future__ import annotations

import asyncio

import pytest

from licentia.server.db.batches import Batches


class Recorder:
    """A send that records its batches and answers each item doubled, slowly."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.fail = False

    async def send(self, items: list[int]) -> list[int | None]:
        self.batches.append(list(items))
        await asyncio.sleep(0.01)
        if self.fail:
            raise RuntimeError("the database is gone")
        return [item * 2 for item in items]


def test_a_lone_request_goes_at_once_and_those_arriving_meanwhile_go_together() -> None:
    recorder = Recorder()
    batches: Batches[int, int] = Batches(recorder.send, key=lambda i: i, share=False)

    async def scenario() -> list[int | None]:
        first = asyncio.create_task(batches.ask(1))
        await asyncio.sleep(0)  # the first statement is on its way
        rest = [asyncio.create_task(batches.ask(i)) for i in (2, 3, 4)]
        return [await first, *[await task for task in rest]]

    assert asyncio.run(scenario()) == [2, 4, 6, 8]
    assert recorder.batches == [[1], [2, 3, 4]]


def test_same_keys_share_an_answer_only_when_sharing_else_wait_for_the_next() -> None:
    for share, expected in ((True, [[7], [7]]), (False, [[7], [7], [7]])):
        recorder = Recorder()
        batches: Batches[int, int] = Batches(recorder.send, key=lambda i: i, share=share)

        async def scenario(batches: Batches[int, int] = batches) -> list[int | None]:
            first = asyncio.create_task(batches.ask(7))
            await asyncio.sleep(0)
            later = [asyncio.create_task(batches.ask(7)) for _ in range(2)]
            return [await first, *[await task for task in later]]

        assert asyncio.run(scenario()) == [14, 14, 14]
        # A request never joins a statement sent before it arrived.
        assert recorder.batches == expected


def test_at_most_most_per_send_and_a_failure_reaches_every_request_of_its_batch() -> None:
    recorder = Recorder()
    batches: Batches[int, int] = Batches(recorder.send, key=lambda i: i, share=False, most=2)

    async def scenario() -> list[int | None]:
        first = asyncio.create_task(batches.ask(0))
        await asyncio.sleep(0)
        rest = [asyncio.create_task(batches.ask(i)) for i in (1, 2, 3)]
        return [await first, *[await task for task in rest]]

    assert asyncio.run(scenario()) == [0, 2, 4, 6]
    assert recorder.batches == [[0], [1, 2], [3]]
    recorder.fail = True

    async def failing() -> None:
        await asyncio.gather(batches.ask(5), batches.ask(6))

    with pytest.raises(RuntimeError, match="gone"):
        asyncio.run(failing())
