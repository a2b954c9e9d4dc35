"""Conversations and probes: `tekton ask`, `tekton team`, `tekton ci ls|info|stats`."""

from __future__ import annotations

import sys

import msgspec

from tekton_cli.output import print_json, table
from tekton_common.catalog import get_ci
from tekton_common.client import SocketClient, Tekton, ci_address
from tekton_common.contract.platform import MicroReply
from tekton_common.settings import Settings
from tekton_common.wire import (
    ErrorReply,
    Response,
    StreamChunk,
    StreamEnd,
    StreamError,
    StreamStart,
)


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
                _print_reply(msgspec.convert(reply, Response), as_json)
                return
            await client.send({"content": message, "stream": True})
            while _print_event(msgspec.convert(await client.receive(), SocketStream), as_json):
                pass
            return
    async with Tekton.connect(settings) as tekton:
        if stream:
            async for event in tekton.stream(str(spec.ci_id), message, timeout):
                _print_event(event, as_json)
        else:
            _print_reply(await tekton.ask(str(spec.ci_id), message, timeout), as_json)


#: what a CI's socket answers a streamed request with
SocketStream = StreamStart | StreamChunk | StreamEnd | StreamError | ErrorReply


def _print_reply(reply: Response, as_json: bool) -> None:
    if as_json:
        print_json(reply)
    else:
        print(reply.content)
        print(f"-- {reply.ai_id} · model {reply.model} · {reply.latency:.3f}s", file=sys.stderr)


def _print_event(event: SocketStream, as_json: bool) -> bool:
    """Print one stream event; False once the stream is over."""
    if as_json:
        print_json(event)
    elif isinstance(event, StreamChunk):
        sys.stdout.write(event.content)
        sys.stdout.flush()
    elif isinstance(event, StreamEnd):
        print()
    elif isinstance(event, StreamError | ErrorReply):
        print(f"\nerror: {event.error}", file=sys.stderr)
    return isinstance(event, StreamStart | StreamChunk)


async def team(settings: Settings, message: str, *, deadline: float, as_json: bool) -> int:
    """Broadcast to every CI and print replies as they arrive; returns how many answered."""
    count = 0
    async with Tekton.connect(settings) as tekton:
        async for reply in tekton.team(message, deadline):
            count += 1
            if as_json:
                sys.stdout.write(msgspec.json.encode(reply).decode() + "\n")
            else:
                print(f"[{reply.ai_id} · {reply.latency:.3f}s] {reply.content}")
            sys.stdout.flush()
    if not as_json:
        print(f"-- {count} CI(s) answered within {deadline:g}s", file=sys.stderr)
    return count


async def probe(
    settings: Settings, verb: str, name: str | None, deadline: float = 1.0
) -> list[MicroReply]:
    """Answers to ``$SRV.<verb>[.<name>]``, like `nats micro ls|info|stats`."""
    async with Tekton.connect(settings) as tekton:
        return await tekton.probe(verb, name, deadline)


def render_probe(verb: str, replies: list[MicroReply]) -> str:
    """The human-readable form of a probe."""
    if verb == "ping":
        return table(
            ["NAME", "ID", "VERSION", "COMPONENT", "CI PORT", "MODEL"],
            [
                (
                    r.name,
                    r.id,
                    r.version,
                    (r.metadata or {}).get("component"),
                    (r.metadata or {}).get("ci_port"),
                    (r.metadata or {}).get("model"),
                )
                for r in replies
            ],
        )
    rows: list[tuple[object, ...]] = []
    for r in replies:
        for e in r.endpoints or []:
            if verb == "info":
                rows.append((r.name, r.id, e.name, e.subject, e.queue_group))
            else:
                rows.append(
                    (
                        r.name,
                        r.id,
                        e.name,
                        e.num_requests or 0,
                        e.num_errors or 0,
                        f"{(e.average_processing_time or 0) / 1e6:.3f}ms",
                    )
                )
    headers = (
        ["NAME", "ID", "ENDPOINT", "SUBJECT", "QUEUE GROUP"]
        if verb == "info"
        else ["NAME", "ID", "ENDPOINT", "REQUESTS", "ERRORS", "AVG"]
    )
    return table(headers, rows)
