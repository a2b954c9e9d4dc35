"""Baseline responders for the benchmarks, each run in its own process.

python -m bench.echo_servers raw-nats URL       nats-py echo on bench.echo.raw
python -m bench.echo_servers faststream URL     FastStream echo on bench.echo.faststream
python -m bench.echo_servers tcp PORT           asyncio streams line echo (readline, write)
python -m bench.echo_servers tcp-protocol PORT  asyncio Protocol echo (no line parsing)
"""

from __future__ import annotations

import asyncio
import sys

SUBJECT = "bench.echo.{kind}"


async def raw_nats(url: str) -> None:
    import nats  # noqa: PLC0415 - each baseline imports only what it uses

    nc = await nats.connect(url)

    async def echo(msg) -> None:  # type: ignore[no-untyped-def]
        await msg.respond(msg.data)

    await nc.subscribe(SUBJECT.format(kind="raw"), queue="q", cb=echo)
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
        runner(raw_nats(target))
    elif kind == "faststream":
        runner(faststream(target))
    elif kind == "tcp-protocol":
        runner(tcp_protocol(int(target)))
    else:
        runner(tcp(int(target)))


if __name__ == "__main__":
    main()
