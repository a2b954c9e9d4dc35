"""Entry point of the API process."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
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
from tekton_common.secrets import read_secret
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


class _Beside(uvicorn.Server):
    """A second server in the process: the first one handles the signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve(settings: Settings, app: Any) -> None:
    """The API on its port and, beside it, the MCP bridge on ``TEKTON_MCP_PORT`` (left
    out, with an error in the log, when that port is taken)."""
    mcp_app = http_app(
        lambda: bus.connect(settings, "tekton-api", retry_forever=True),
        bus.close,
        read_secret("TEKTON_API_TOKEN"),
        settings.host,
    )
    beside: asyncio.Task[None] | None = None
    sock = socket.socket()
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((settings.host, settings.mcp_port))
    except OSError as exc:
        log.error("MCP bridge not served: port %d: %s", settings.mcp_port, exc)
        sock.close()
    else:
        mcp = _Beside(uvicorn.Config(mcp_app, log_config=None, access_log=False))
        beside = asyncio.create_task(mcp.serve(sockets=[sock]))
    api = uvicorn.Server(
        uvicorn.Config(
            app, host=settings.host, port=settings.api_port, log_config=None, access_log=False
        )
    )
    try:
        await api.serve()
    finally:
        if beside is not None:
            mcp.should_exit = True
            await beside
