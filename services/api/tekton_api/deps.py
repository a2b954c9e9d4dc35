"""What every route needs: the NATS connection, the settings, the history DSN, and the
bearer-token check."""

from __future__ import annotations

from fastapi import Request
from nats.aio.client import Client

from tekton_common.errors import ProtocolError, UnauthorizedError
from tekton_common.secrets import bearer
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
    """With TEKTON_API_TOKEN or TEKTON_API_TOKENS set, `Authorization: Bearer <token>`
    is required; a named token's name is who sends the request (`request.state.who`)."""
    tokens: dict[str, str | None] = request.app.state.tokens
    request.state.who = None
    if not tokens:
        return
    ok, request.state.who = bearer(request.headers.get("authorization", "").encode(), tokens)
    if not ok:
        raise UnauthorizedError("a bearer token is required")


def who(request: Request) -> str | None:
    """The name of the named token the request came with, if any."""
    name: str | None = getattr(request.state, "who", None)
    return name


def decider(request: Request, given: str | None) -> str:
    """Who decides or answers: a named token's name (it wins over `given`), else
    `given`; a 400 when neither says."""
    name = who(request) or given
    if not name:
        raise ProtocolError("say who decides: by (or send a named token, TEKTON_API_TOKENS)")
    return name
