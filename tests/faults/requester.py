"""One requester process of the load test: N concurrent chats across the fleet, half over
NATS and half over the CIs' socket ports, each checked to be its own reply.

    python -m tests.faults.requester NATS_URL CI_PORT_BASE COUNT TAG

Prints one JSON line: sent, ok, mismatched, errors (the first few).
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import nats

from tekton_common.catalog import CATALOG
from tekton_common.client import SocketClient

SOCKET_CONNECTIONS = 8


def _own(reply: dict[str, Any], ci: str, token: str) -> bool:
    return reply.get("ai_id") == ci and f'"{token}"' in reply.get("content", "")


async def main(url: str, ci_port_base: int, count: int, tag: str) -> dict[str, Any]:
    nc = await nats.connect(url)
    result: dict[str, Any] = {"sent": 0, "ok": 0, "mismatched": 0, "errors": []}

    async def over_nats(i: int) -> None:
        spec = CATALOG[i % len(CATALOG)]
        token = f"{tag}-{i}"
        msg = await nc.request(f"tekton.ci.{spec.name}.chat", token.encode(), timeout=60)
        reply = json.loads(msg.data)
        result["ok" if _own(reply, str(spec.ci_id), token) else "mismatched"] += 1

    async def over_socket(lane: int, numbers: list[int]) -> None:
        spec = CATALOG[lane % len(CATALOG)]
        async with SocketClient("127.0.0.1", spec.ci_port(ci_port_base), timeout=60) as client:
            for i in numbers:  # pipelined: every request first, then the replies in order
                await client.send({"content": f"{tag}-{i}", "request_id": f"{tag}-{i}"})
            for i in numbers:
                reply = await client.receive()
                own = reply.get("request_id") == f"{tag}-{i}" and _own(
                    reply, str(spec.ci_id), f"{tag}-{i}"
                )
                result["ok" if own else "mismatched"] += 1

    half = count // 2
    socket_numbers = list(range(half, count))
    lanes = [socket_numbers[k::SOCKET_CONNECTIONS] for k in range(SOCKET_CONNECTIONS)]
    jobs = [over_nats(i) for i in range(half)]
    jobs += [over_socket(k + hash(tag) % 17, lane) for k, lane in enumerate(lanes)]
    result["sent"] = count
    for outcome in await asyncio.gather(*jobs, return_exceptions=True):
        if isinstance(outcome, BaseException) and len(result["errors"]) < 5:
            result["errors"].append(repr(outcome))
    await nc.close()
    return result


if __name__ == "__main__":
    url, base, count, tag = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    print(json.dumps(asyncio.run(main(url, base, count, tag))))
