"""Baseline responders for the benchmarks, each run in its own process.

python -m bench.echo_servers raw-nats URL [MS] nats-py echo on bench.echo.raw (after MS ms)
python -m bench.echo_servers micro URL          nats-py micro endpoint echo on bench.echo.micro
python -m bench.echo_servers faststream URL     FastStream echo on bench.echo.faststream
python -m bench.echo_servers tcp PORT           asyncio streams line echo (readline, write)
python -m bench.echo_servers tcp-protocol PORT  asyncio Protocol echo (no line parsing)
"""

from __future__ import annotations

import asyncio
import sys

SUBJECT = "bench.echo.{kind}"


async def raw_nats(url: str, latency_ms: float = 0.0) -> None:
    import nats  # noqa: PLC0415 - each baseline imports only what it uses

    nc = await nats.connect(url)
    delay = latency_ms / 1000
    pending = set()

    async def later(msg) -> None:  # type: ignore[no-untyped-def]
        await asyncio.sleep(delay)
        await msg.respond(msg.data)

    async def echo(msg) -> None:  # type: ignore[no-untyped-def]
        if not delay:
            await msg.respond(msg.data)
            return
        task = asyncio.create_task(later(msg))  # answered at once, like a CI's model
        pending.add(task)
        task.add_done_callback(pending.discard)

    await nc.subscribe(SUBJECT.format(kind="raw"), queue="q", cb=echo)
    await nc.flush()
    print("ready", flush=True)
    await asyncio.Event().wait()


async def micro(url: str) -> None:
    """The nats-py micro service a CI is built on, echoing: what $SRV support costs."""
    import nats  # noqa: PLC0415
    from nats.micro import add_service  # noqa: PLC0415

    nc = await nats.connect(url)
    service = await add_service(nc, name="bench-echo", version="0.0.1")

    async def echo(request) -> None:  # type: ignore[no-untyped-def]
        await request.respond(request.data)

    await service.add_endpoint(
        name="echo", subject=SUBJECT.format(kind="micro"), handler=echo, queue_group="q"
    )
    await nc.flush()
    print("ready", flush=True)
    await asyncio.Event().wait()


async def faststream(url: str) -> None:
    from faststream.nats import NatsBroker, NatsMessage  # noqa: PLC0415

    # per-message logging off: the baseline is the framework, not its log volume
    broker = NatsBroker(url, logger=None)

    @broker.subscriber(SUBJECT.format(kind="faststream"), queue="q")
    async def echo(msg: NatsMessage) -> bytes:
        return msg.body

    async with broker:
        await broker.start()
        print("ready", flush=True)
        await asyncio.Event().wait()


async def tcp(port: int) -> None:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while line := await reader.readline():
            writer.write(line)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", port)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


class _Echo(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)  # type: ignore[attr-defined]


async def tcp_protocol(port: int) -> None:
    server = await asyncio.get_running_loop().create_server(_Echo, "127.0.0.1", port)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    kind, target = sys.argv[1], sys.argv[2]
    try:
        import uvloop  # noqa: PLC0415

        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    if kind == "raw-nats":
        runner(raw_nats(target, float(sys.argv[3]) if len(sys.argv) > 3 else 0.0))
    elif kind == "micro":
        runner(micro(target))
    elif kind == "faststream":
        runner(faststream(target))
    elif kind == "tcp-protocol":
        runner(tcp_protocol(int(target)))
    else:
        runner(tcp(int(target)))


if __name__ == "__main__":
    main()
