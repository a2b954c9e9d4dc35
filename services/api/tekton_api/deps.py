"""What every route needs: the NATS connection, the settings, the history DSN, and the
bearer-token check."""

from __future__ import annotations

import hmac

from fastapi import Request
from nats.aio.client import Client

from tekton_common.errors import UnauthorizedError
from tekton_common.settings import Settings


def bus(request: Request) -> Client:
    """The API's NATS connection."""
    nc: Client = request.app.state.nc
    return nc


def settings(request: Request) -> Settings:
    """The API process's settings."""
    current: Settings = request.app.state.settings
    return current


def history(request: Request) -> str | None:
    """The PostgreSQL DSN of run history, if any."""
    dsn: str | None = request.app.state.dsn
    return dsn


async def authorized(request: Request) -> None:
    """With TEKTON_API_TOKEN set, `Authorization: Bearer <token>` is required."""
    token: str | None = request.app.state.token
    if token is None:
        return
    given = request.headers.get("authorization", "")
    if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        raise UnauthorizedError("a bearer token is required")
