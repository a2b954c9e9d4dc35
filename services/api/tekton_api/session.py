"""The dashboard's sign-in: a bearer token given once becomes a session cookie, so a
link to a run opens in a browser signed in before (scripts keep sending the token)."""

from __future__ import annotations

import time

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from tekton_api.deps import DASHBOARD_HEADER, cookie_name, credentials, from_the_dashboard
from tekton_common.errors import ForbiddenError, UnauthorizedError
from tekton_common.secrets import bearer, session_value

router = APIRouter(prefix="/ui/session", tags=["dashboard"])
#: how long a browser stays signed in
MAX_AGE_S = 30 * 24 * 3600


class SignIn(BaseModel):
    """A bearer token of the API, given once by a person at the dashboard."""

    model_config = ConfigDict(extra="forbid")

    token: str = Field(min_length=1, max_length=4096)


class SessionState(BaseModel):
    """Whether the API asks for a token, whether this browser is signed in, and as whom
    (a named token's name)."""

    required: bool
    signed_in: bool
    who: str | None = None


def tokens_of(request: Request) -> dict[str, str | None]:
    """The API's tokens (token → name)."""
    tokens: dict[str, str | None] = request.app.state.tokens
    return tokens


def dashboard_only(request: Request) -> None:
    """Sign-in and sign-out come from the dashboard's own page, not a form of another
    site (which would sign a browser in as someone else)."""
    if not from_the_dashboard(request):
        raise ForbiddenError(f"sign in from the dashboard (the {DASHBOARD_HEADER} header)")


@router.get("", response_model=SessionState)
async def current(request: Request) -> SessionState:
    """Whether this browser is signed in (the cookie, or a bearer token sent)."""
    if not tokens_of(request):
        return SessionState(required=False, signed_in=True)
    ok, who, _by_cookie = credentials(request)
    return SessionState(required=True, signed_in=ok, who=who)


@router.post("", status_code=204, dependencies=[Depends(dashboard_only)])
async def sign_in(ask: SignIn, request: Request) -> Response:
    """Sign this browser in: with one of the API's tokens, a session cookie (HTTP-only,
    same-site strict, good for 30 days; derived from the token, so a new token ends it)."""
    tokens = tokens_of(request)
    done = Response(status_code=204)
    if not tokens:
        return done  # no token is asked for: nothing to sign in to
    ok, _who = bearer(f"Bearer {ask.token}".encode(), tokens)
    if not ok:
        raise UnauthorizedError("that is not a token of this API")
    done.set_cookie(
        cookie_name(request),
        session_value(ask.token, int(time.time()) + MAX_AGE_S),
        max_age=MAX_AGE_S,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return done


@router.delete("", status_code=204, dependencies=[Depends(dashboard_only)])
async def sign_out(request: Request) -> Response:
    """Sign this browser out (its cookie removed; a copy of it elsewhere ends when it
    expires, or with the token)."""
    done = Response(status_code=204)
    done.delete_cookie(cookie_name(request), path="/", httponly=True, samesite="strict")
    return done
