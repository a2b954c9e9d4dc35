"""The embedded PostgreSQL of `tekton up` (from the pgserver wheel), unless
TEKTON_POSTGRES_DSN points at a server of your own.

Data lives in ``$TEKTON_HOME/pg``; the server listens on a unix socket only. Its DSN is
kept in ``$TEKTON_HOME/run/postgres.json`` for the processes and commands that need it.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tekton_common.errors import TransportError
from tekton_common.history import embedded_dsn
from tekton_common.settings import Settings


def pg_data(settings: Settings) -> Path:
    """Folder of the embedded database."""
    return settings.home_path / "pg"


def _state(settings: Settings) -> Path:
    return settings.home_path / "run" / "postgres.json"


def embedded_server(folder: Path, cleanup_mode: str | None) -> Any:
    # only `up` and `down` touch the embedded server, so pgserver is imported here
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
        from pgserver.postgres_server import get_server  # noqa: PLC0415

        return get_server(folder, cleanup_mode=cleanup_mode)


def ensure_postgres(settings: Settings, say: Callable[[str], None]) -> str:
    """Start (or find) the embedded server; returns the DSN every process should use."""
    if settings.postgres_dsn:
        say("using PostgreSQL at TEKTON_POSTGRES_DSN")
        return settings.postgres_dsn
    folder = pg_data(settings)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        server = embedded_server(folder, cleanup_mode=None)
    except Exception as exc:
        raise TransportError(
            f"embedded PostgreSQL did not start: {exc}; log in {folder / 'log'}"
        ) from exc
    dsn = str(server.get_uri())
    _state(settings).parent.mkdir(parents=True, exist_ok=True)
    _state(settings).write_text(json.dumps({"dsn": dsn, "pgdata": str(folder)}))
    say(f"postgres        ready  {folder} (unix socket)")
    return dsn


def stop_postgres(settings: Settings, say: Callable[[str], None]) -> str:
    """Stop the embedded server if `up` started one."""
    if settings.postgres_dsn or embedded_dsn(settings) is None:
        return "not running"
    server = embedded_server(pg_data(settings), cleanup_mode="stop")
    server.cleanup()
    _state(settings).unlink(missing_ok=True)
    say("postgres        stopped")
    return "stopped"
