"""Entry point of the API process."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import logging
import signal
import socket
import sys
from collections.abc import Iterator, Sequence
from typing import Any

import uvicorn

from tekton_api.app import create_app
from tekton_common import bus
from tekton_common.client.mcp_bridge import http_app
from tekton_common.errors import TektonError
from tekton_common.history import history_dsn
from tekton_common.settings import Settings, load_settings
from tekton_common.telemetry import observe

log = logging.getLogger(__name__)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m tekton_api`."""
    parser = argparse.ArgumentParser(prog="tekton_api", description="Run the Tekton API.")
    parser.add_argument("--home", help="state folder (TEKTON_HOME)")
    parser.add_argument("--port", type=int, help="port (TEKTON_API_PORT, default 8090)")
    args = parser.parse_args(argv)
    try:
        settings = load_settings({"home": args.home, "api_port": args.port})
    except TektonError as exc:
        print(f"tekton_api: {exc}", file=sys.stderr)
        return 2
    observe("tekton-api", settings)
    app = create_app(settings, history_dsn(settings))
    asyncio.run(serve(settings, app))
    return 0


class _Quiet(uvicorn.Server):
    """A uvicorn server that leaves signals to `serve` (two servers share the process:
    one owner stops both)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


#: how long the servers get to finish their requests once told to stop
STOP_GRACE_S = 10.0


def _loopback(host: str) -> bool:
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _mcp_socket(settings: Settings, tokens: dict[str, str | None]) -> socket.socket | None:
    """The MCP bridge's listening socket, or None (and why, in the log) when it is not
    served: its port is taken, or the host is reachable from elsewhere and no token
    guards it (the bridge calls tools; the API's token set guards both)."""
    if not tokens and not _loopback(settings.host):
        log.error(
            "MCP bridge not served: host %s is not loopback and no TEKTON_API_TOKEN or "
            "TEKTON_API_TOKENS is set",
            settings.host,
        )
        return None
    sock = socket.socket()
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((settings.host, settings.mcp_port))
    except OSError as exc:
        log.error("MCP bridge not served: port %d: %s", settings.mcp_port, exc)
        sock.close()
        return None
    return sock


async def serve(settings: Settings, app: Any) -> None:
    """The API on its port and, beside it, the MCP bridge on ``TEKTON_MCP_PORT``, behind
    the same tokens the API read (`create_app`)."""
    tokens: dict[str, str | None] = app.state.tokens
    mcp_app = http_app(
        lambda: bus.connect(settings, "tekton-api", retry_forever=True),
        bus.close,
        tokens,
        settings.host,
    )
    config = uvicorn.Config(
        app, host=settings.host, port=settings.api_port, log_config=None, access_log=False
    )
    servers: list[tuple[_Quiet, socket.socket | None]] = [(_Quiet(config), None)]
    if (sock := _mcp_socket(settings, tokens)) is not None:
        servers.append((_Quiet(uvicorn.Config(mcp_app, log_config=None, access_log=False)), sock))

    def stop() -> None:
        for server, _ in servers:
            server.should_exit = True

    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop)
    tasks = [
        asyncio.create_task(server.serve(sockets=[sock] if sock else None))
        for server, sock in servers
    ]
    # either ending (a signal, or the API's port taken) ends both
    done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    stop()
    if pending:
        await asyncio.wait(pending, timeout=STOP_GRACE_S)
        for task in pending:
            task.cancel()
    for task in done:
        task.result()  # the API's failure to start is the process's
