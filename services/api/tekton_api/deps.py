"""What every route needs: the NATS connection, the settings, the history DSN, and the
bearer-token check."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import Depends, Request
from nats.aio.client import Client

from tekton_common.client import Tekton
from tekton_common.errors import ForbiddenError, ProtocolError, UnauthorizedError
from tekton_common.secrets import bearer, session
from tekton_common.settings import Settings

#: the header a request signed in by cookie must carry to change anything: a page of
#: another site cannot send it without the API's consent (CORS), a forged form not at all
DASHBOARD_HEADER = "x-tekton-dashboard"
SAFE = frozenset({"GET", "HEAD", "OPTIONS"})


def from_the_dashboard(request: Request) -> bool:
    """Whether a request came from the dashboard's own page: its header, and the same
    site where the browser says (``Sec-Fetch-Site``)."""
    site = request.headers.get("sec-fetch-site", "same-origin")
    return bool(request.headers.get(DASHBOARD_HEADER)) and site in ("same-origin", "none")


def bus(request: Request) -> Client:
    """The API's NATS connection."""
    nc: Client = request.app.state.nc
    return nc


def platform(request: Request) -> Tekton:
    """The platform, through the API's NATS connection."""
    return Tekton(bus(request))


Platform = Annotated[Tekton, Depends(platform)]


def settings(request: Request) -> Settings:
    """The API process's settings."""
    current: Settings = request.app.state.settings
    return current


def history(request: Request) -> str | None:
    """The PostgreSQL DSN of run history, if any."""
    dsn: str | None = request.app.state.dsn
    return dsn


def cookie_name(request: Request) -> str:
    """The dashboard's session cookie of this API: cookies do not tell ports apart, so
    two APIs (or another server) on one host keep theirs apart by name."""
    current: Settings = request.app.state.settings
    return f"tekton_session_{current.api_port}"


def credentials(request: Request) -> tuple[bool, str | None, bool]:
    """Whether the request is signed in (a bearer token, else the dashboard's session
    cookie), as whom (a named token's name), and whether by the cookie."""
    tokens: dict[str, str | None] = request.app.state.tokens
    header = request.headers.get("authorization", "")
    if header.startswith("Bearer "):  # another scheme (a proxy's Basic) is not ours
        return (*bearer(header.encode(), tokens), False)
    cookie = request.cookies.get(cookie_name(request))
    if cookie is not None:
        return (*session(cookie, tokens, time.time()), True)
    return False, None, False


async def authorized(request: Request) -> None:
    """With TEKTON_API_TOKEN or TEKTON_API_TOKENS set, `Authorization: Bearer <token>`
    is required, or the dashboard's session cookie (and, to change anything, the
    dashboard's header from the same site); a named token's name is who sends the
    request (`request.state.who`)."""
    request.state.who = None
    if not request.app.state.tokens:
        return
    ok, request.state.who, by_cookie = credentials(request)
    if not ok:
        raise UnauthorizedError(
            "the dashboard session has ended: sign in again"
            if by_cookie
            else "a bearer token is required"
        )
    if by_cookie and request.method not in SAFE and not from_the_dashboard(request):
        raise ForbiddenError(
            f"a change signed in by cookie comes from the dashboard itself "
            f"(the {DASHBOARD_HEADER} header, same site); scripts send the bearer token"
        )


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
