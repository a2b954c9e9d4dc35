"""PostgreSQL through asyncpg: a pool, and versioned SQL migrations applied at start.

Migrations are the files ``migrations/NNN_name.sql`` beside this module, applied in
order, each in its own transaction, and recorded in ``schema_migrations``. An advisory
lock keeps two processes from migrating at once.
"""

from __future__ import annotations

import logging
from importlib import resources
from typing import Any

from tekton_common.errors import TransportError

log = logging.getLogger(__name__)
MIGRATION_LOCK = 7_146_001  # any constant shared by every Tekton process


def migrations() -> list[tuple[int, str, str]]:
    """(version, name, sql) of every migration file, in order."""
    found = []
    for entry in resources.files("tekton_stages.migrations").iterdir():
        if entry.name.endswith(".sql"):
            version = int(entry.name.split("_", 1)[0])
            found.append((version, entry.name, entry.read_text(encoding="utf-8")))
    return sorted(found)


async def connect(dsn: str, *, min_size: int = 1, max_size: int = 4) -> Any:
    """A pool with the schema migrated; TransportError when the server is unreachable."""
    import asyncpg  # noqa: PLC0415 - only the processes that keep history import it

    try:
        pool = await asyncpg.create_pool(
            dsn, min_size=min_size, max_size=max_size, timeout=5, command_timeout=30
        )
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        raise TransportError(f"cannot reach PostgreSQL: {type(exc).__name__}: {exc}") from None
    await migrate(pool)
    return pool


async def migrate(pool: Any) -> list[int]:
    """Apply the migrations not yet applied; returns their versions."""
    applied: list[int] = []
    async with pool.acquire() as conn:
        await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
        try:
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version integer "
                "PRIMARY KEY, name text NOT NULL, applied_at timestamptz "
                "NOT NULL DEFAULT now())"
            )
            done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
            for version, name, sql in migrations():
                if version in done:
                    continue
                async with conn.transaction():
                    await conn.execute(sql)
                    await conn.execute(
                        "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                        version,
                        name,
                    )
                applied.append(version)
                log.info("applied migration %s", name)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)
    return applied
