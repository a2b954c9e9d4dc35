"""Conversations and probes: `tekton ask`, `tekton team`, `tekton ci ls|info|stats`."""

from __future__ import annotations

import sys
from typing import Any

import msgspec

from tekton_cli.output import print_json, table
from tekton_common import bus
from tekton_common.catalog import get_ci
from tekton_common.client import BusClient, SocketClient, ci_address
from tekton_common.gather import gather_all
from tekton_common.settings import Settings
from tekton_common.subjects import srv


async def ask(
    settings: Settings,
    ci: str,
    message: str,
    *,
    use_socket: bool,
    stream: bool,
    as_json: bool,
    timeout: float,
) -> None:
    """Ask one CI over NATS (default) or its socket, printing the reply."""
    spec = get_ci(ci)
    if use_socket:
        port = ci_address(ci, None, settings.ci_port_base)
        async with SocketClient(settings.host, port, timeout) as client:
            if not stream:
                reply = await client.request({"content": message})
                _print_reply(reply, as_json)
                return
            await client.send({"content": message, "stream": True})
            while True:
                event = await client.receive()
                if not _print_event(event, as_json):
                    return
    nc = await bus.connect(settings, "tekton-cli")
    try:
        client_ = BusClient(nc, timeout)
        if stream:
            async for event in client_.stream(str(spec.ci_id), message):
                _print_event(event, as_json)
        else:
            response = await client_.chat(str(spec.ci_id), message)
            _print_reply(msgspec.to_builtins(response), as_json)
    finally:
        await bus.close(nc)


def _print_reply(reply: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(reply)
    else:
        print(reply.get("content", ""))
        print(
            f"-- {reply.get('ai_id')} · model {reply.get('model')} · "
            f"{reply.get('latency', 0):.3f}s",
            file=sys.stderr,
        )


def _print_event(event: dict[str, Any], as_json: bool) -> bool:
    """Print one stream event; False once the stream is over."""
    kind = event.get("type")
    if as_json:
        print_json(event)
    elif kind == "stream_chunk":
        sys.stdout.write(str(event.get("content", "")))
        sys.stdout.flush()
    elif kind == "stream_end":
        print()
    elif kind in ("stream_error", "error"):
        print(f"\nerror: {event.get('error')}", file=sys.stderr)
    return kind not in ("stream_end", "stream_error", "error")


async def team(settings: Settings, message: str, *, deadline: float, as_json: bool) -> int:
    """Broadcast to every CI and print replies as they arrive; returns how many answered."""
    nc = await bus.connect(settings, "tekton-cli")
    count = 0
    try:
        async for reply in BusClient(nc).team(message, deadline=deadline):
            count += 1
            if as_json:
                sys.stdout.write(msgspec.json.encode(reply).decode() + "\n")
            else:
                print(f"[{reply.ai_id} · {reply.latency:.3f}s] {reply.content}")
            sys.stdout.flush()
    finally:
        await bus.close(nc)
    if not as_json:
        print(f"-- {count} CI(s) answered within {deadline:g}s", file=sys.stderr)
    return count


async def probe(
    settings: Settings, verb: str, name: str | None, deadline: float = 1.0
) -> list[dict[str, Any]]:
    """Answers to ``$SRV.<verb>[.<name>]``, like `nats micro ls|info|stats`."""
    target = str(get_ci(name).ci_id) if name else None
    nc = await bus.connect(settings, "tekton-cli")
    try:
        msgs = await gather_all(nc, srv(verb, target), deadline=deadline)
    finally:
        await bus.close(nc)
    replies = [msgspec.json.decode(m.data) for m in msgs]
    return sorted(replies, key=lambda r: (r.get("name", ""), r.get("id", "")))


def render_probe(verb: str, replies: list[dict[str, Any]]) -> str:
    """The human-readable form of a probe."""
    if verb == "ping":
        return table(
            ["NAME", "ID", "VERSION", "COMPONENT", "CI PORT", "MODEL"],
            [
                (
                    r["name"],
                    r["id"],
                    r["version"],
                    r["metadata"].get("component"),
                    r["metadata"].get("ci_port"),
                    r["metadata"].get("model"),
                )
                for r in replies
            ],
        )
    rows: list[tuple[object, ...]] = []
    for r in replies:
        for e in r.get("endpoints", []):
            if verb == "info":
                rows.append((r["name"], r["id"], e["name"], e["subject"], e["queue_group"]))
            else:
                rows.append(
                    (
                        r["name"],
                        r["id"],
                        e["name"],
                        e["num_requests"],
                        e["num_errors"],
                        f"{e['average_processing_time'] / 1e6:.3f}ms",
                    )
                )
    headers = (
        ["NAME", "ID", "ENDPOINT", "SUBJECT", "QUEUE GROUP"]
        if verb == "info"
        else ["NAME", "ID", "ENDPOINT", "REQUESTS", "ERRORS", "AVG"]
    )
    return table(headers, rows)
