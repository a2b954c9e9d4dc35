"""Scatter-gather over NATS: publish once, collect every reply until a deadline."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg

from tekton_common.errors import TransportError


async def gather(
    nc: Client,
    subject: str,
    payload: bytes = b"",
    *,
    deadline: float = 1.0,
    expected: int | None = None,
    headers: dict[str, str] | None = None,
) -> AsyncIterator[Msg]:
    """Yield replies as they arrive, until `deadline` seconds pass or `expected` arrived."""
    if not nc.is_connected:
        raise TransportError("not connected to NATS")
    inbox = nc.new_inbox()
    queue: asyncio.Queue[Msg] = asyncio.Queue()

    async def on_reply(msg: Msg) -> None:
        queue.put_nowait(msg)

    sub = await nc.subscribe(inbox, cb=on_reply)
    try:
        await nc.publish(subject, payload, reply=inbox, headers=headers)
        end = time.monotonic() + deadline
        seen = 0
        while expected is None or seen < expected:
            remaining = end - time.monotonic()
            if remaining <= 0:
                return
            try:
                msg = await asyncio.wait_for(queue.get(), remaining)
            except TimeoutError:
                return
            seen += 1
            yield msg
    finally:
        with contextlib.suppress(nats.errors.Error):
            await sub.unsubscribe()


async def gather_all(
    nc: Client,
    subject: str,
    payload: bytes = b"",
    *,
    deadline: float = 1.0,
    expected: int | None = None,
) -> list[Msg]:
    """Every reply to a broadcast, collected until the deadline."""
    return [msg async for msg in gather(nc, subject, payload, deadline=deadline, expected=expected)]
