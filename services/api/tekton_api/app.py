"""The Tekton API: runs, their live events, artifacts, configuration, checks and the CIs.

One process (``python -m tekton_api``, started by `tekton up`) on ``TEKTON_API_PORT``
(8090). It talks to the platform over NATS like the command line does: runs start in
the stages service, events come from the JetStream stream ``TEKTON_RUNS`` (replayed,
then followed live as Server-Sent Events), history from PostgreSQL when reachable.
Errors are RFC 9457 problem details. With the secret ``TEKTON_API_TOKEN`` set, every
route but the health checks and the dashboard's page, files and sign-in needs
``Authorization: Bearer`` (or the dashboard's session cookie, see `session`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from http import HTTPStatus
from pathlib import Path

import nats.errors
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import Scope

from tekton_api import debates, runs, session, system
from tekton_api.models import Problem
from tekton_common import bus
from tekton_common.errors import TektonError
from tekton_common.secrets import api_tokens
from tekton_common.settings import Settings

STATIC = Path(__file__).parent / "static"
PROBLEM = "application/problem+json"


def problem(status: int, detail: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    """An RFC 9457 problem details response (the title is the status's reason phrase)."""
    known = status in HTTPStatus._value2member_map_
    title = HTTPStatus(status).phrase if known else "Error"
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


#: the dashboard's files are asked again (cheaply, by ETag) so an upgrade is seen at once
REVALIDATE = {"Cache-Control": "no-cache"}
#: the page runs its own files only, talks to this API only, and is framed by no one
PAGE = {
    **REVALIDATE,
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'self'",
}


class Revalidated(StaticFiles):
    """The dashboard's scripts and styles, revalidated on every load."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        reply = await super().get_response(path, scope)
        reply.headers.update(REVALIDATE)
        return reply


def allowed_methods(request: Request) -> set[str]:
    """The methods the routes matching the request's path accept."""
    path = request.url.path
    return {
        method
        for route in request.app.routes
        if isinstance(route, APIRoute) and route.path_regex.match(path)
        for method in route.methods or ()
    }


def create_app(settings: Settings, dsn: str | None) -> FastAPI:
    """The API for one platform (`dsn`: run history in PostgreSQL, if any)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.nc = await bus.connect(settings, "tekton-api", retry_forever=True)
        try:
            yield
        finally:
            await bus.close(app.state.nc)

    app = FastAPI(
        title="Tekton API",
        version="1",
        description="Start, watch and inspect runs; configuration, checks and the CI roster.",
        lifespan=lifespan,
        responses={
            status: {
                "model": Problem,
                "description": description,
                "content": {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}},
            }
            for status, description in (
                (400, "a request the platform refused"),
                (401, "missing or wrong bearer token"),
                (403, "a signed-in browser's change that did not come from the dashboard"),
                (404, "no such run or artifact"),
                (422, "invalid request"),
                (429, "a budget is exhausted"),
                (500, "a service failed"),
                (502, "the model provider failed"),
                (503, "the platform could not answer"),
                (504, "the platform did not answer in time"),
            )
        },
    )
    app.state.settings, app.state.dsn = settings, dsn
    app.state.tokens = api_tokens()
    app.include_router(runs.router)
    app.include_router(runs.feed)
    app.include_router(system.router)
    app.include_router(debates.router)
    app.include_router(session.router)

    @app.exception_handler(TektonError)
    async def tekton_error(_request: Request, exc: TektonError) -> JSONResponse:
        # the platform's own code, as it came (a remote 503 stays a 503)
        return problem(exc.code if 400 <= exc.code < 600 else 500, str(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        detail = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors)
        # a malformed id in the path or query is a bad request; an invalid body stays a 422
        in_address = all(e["loc"] and e["loc"][0] in ("path", "query") for e in errors)
        return problem(400 if in_address else 422, detail)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = dict(exc.headers or {})
        if exc.status_code == 405:  # every method of the path, not just the first route's
            headers["Allow"] = ", ".join(sorted(allowed_methods(request)))
        return problem(exc.status_code, str(exc.detail), headers)

    @app.exception_handler(nats.errors.Error)
    async def bus_error(_request: Request, exc: nats.errors.Error) -> JSONResponse:
        return problem(503, f"NATS: {exc or type(exc).__name__}")

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> PlainTextResponse:
        return PlainTextResponse("ok")

    @app.get("/readyz", include_in_schema=False)
    async def readyz(request: Request) -> PlainTextResponse:
        nc = getattr(request.app.state, "nc", None)
        ready = nc is not None and nc.is_connected
        return PlainTextResponse("ready" if ready else "starting", 200 if ready else 503)

    # the dashboard: one page, at an address of its own for every run, stage and
    # artifact (the page reads the address; the JSON routes stay where they are)
    @app.get("/", include_in_schema=False)
    @app.get("/ui", include_in_schema=False)
    @app.get("/ui/runs/{run_id}", include_in_schema=False)
    @app.get("/ui/runs/{run_id}/stages/{stage}", include_in_schema=False)
    @app.get("/ui/runs/{run_id}/artifacts/{name}", include_in_schema=False)
    async def dashboard() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers=PAGE)

    app.mount("/ui/static", Revalidated(directory=STATIC), name="static")

    return app
