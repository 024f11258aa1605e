"""Micro-batching for a server: requests that arrive within a few milliseconds of each other
share one decoder call, run in a worker thread so the event loop keeps answering."""

from __future__ import annotations

import asyncio
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass
class _Job:
    inputs: list[Any]
    key: tuple  # the decoding parameters: only jobs with equal keys share a decoder call
    future: asyncio.Future


class MicroBatcher:
    """One worker task that gathers queued jobs into decoder calls.

    A call takes the oldest job and the later ones with the same ``key``, waiting up to
    ``max_wait_ms`` after the oldest arrived for up to ``max_batch`` inputs in all (a job larger
    than that runs alone), and runs ``run(inputs, key)`` in a thread. Its outputs go back to
    each job's future in order. If a shared call fails, each of its jobs is run alone, so one
    bad input fails only its own request. ``calls`` counts the calls by their size in inputs.
    """

    def __init__(
        self, run: Callable[[list[Any], tuple], list[Any]], max_batch: int, max_wait_ms: float
    ) -> None:
        self.run, self.max_batch, self.max_wait = run, max_batch, max_wait_ms / 1000.0
        self.calls: Counter[int] = Counter()
        self._queue: deque[_Job] = deque()
        self._arrived: asyncio.Event | None = None
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._arrived = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._serve())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def submit(self, inputs: list[Any], key: tuple) -> list[Any]:
        """Queue ``inputs`` and wait for their outputs (one per input, in order)."""
        job = _Job(list(inputs), key, asyncio.get_running_loop().create_future())
        self._queue.append(job)
        self._arrived.set()
        return await job.future

    async def _serve(self) -> None:
        while True:
            jobs = await self._gather()
            await self._call(jobs)

    def _queued(self, key: tuple) -> int:
        return sum(len(j.inputs) for j in self._queue if j.key == key)

    async def _gather(self) -> list[_Job]:
        while not self._queue:
            self._arrived.clear()
            await self._arrived.wait()
        loop, key = asyncio.get_running_loop(), self._queue[0].key
        deadline = loop.time() + self.max_wait
        while self._queued(key) < self.max_batch and loop.time() < deadline:
            self._arrived.clear()
            try:  # an Event, not Queue.get, so a timeout never loses a job
                await asyncio.wait_for(self._arrived.wait(), deadline - loop.time())
            except TimeoutError:
                break
        taken, size = [], 0
        for job in list(self._queue):
            if job.key == key and (not taken or size + len(job.inputs) <= self.max_batch):
                taken.append(job)
                size += len(job.inputs)
        for job in taken:
            self._queue.remove(job)
        return taken

    async def _call(self, jobs: list[_Job]) -> None:
        inputs = [x for j in jobs for x in j.inputs]
        try:
            outputs = await asyncio.to_thread(self.run, inputs, jobs[0].key)
        except Exception as e:  # noqa: BLE001 - handed to the request, never kills the worker
            if len(jobs) > 1:
                for job in jobs:
                    await self._call([job])
            elif not jobs[0].future.done():
                jobs[0].future.set_exception(e)
            return
        self.calls[len(inputs)] += 1
        start = 0
        for job in jobs:
            if not job.future.done():  # a client that went away has cancelled its future
                job.future.set_result(outputs[start : start + len(job.inputs)])
            start += len(job.inputs)
