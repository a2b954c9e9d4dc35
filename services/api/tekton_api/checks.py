"""`GET /system/checks`: is everything a run needs there?"""

from __future__ import annotations

import asyncio
import shutil
import tempfile

from nats.aio.client import Client

from tekton_api.models import Check, SystemChecks
from tekton_common.client import Tekton
from tekton_common.secrets import read_secret
from tekton_common.settings import Settings


async def _postgres(dsn: str | None) -> Check:
    if not dsn:
        return Check(ok=False, detail="no PostgreSQL configured: history stays in JetStream")
    import asyncpg  # noqa: PLC0415

    try:
        conn = await asyncpg.connect(dsn, timeout=3)
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        return Check(ok=False, detail=f"unreachable: {type(exc).__name__}")
    await conn.close()
    return Check(ok=True, detail="reachable")


async def _memory(nc: Client) -> Check:
    info = await Tekton(nc).memory()  # what `tekton status` shows
    if not info.reachable:
        return Check(ok=False, detail=info.error or "unreachable")
    return Check(ok=True, detail=f"{info.embedder} embeddings, {info.lessons} lessons")


def _writable(folder: str) -> Check:
    try:
        with tempfile.NamedTemporaryFile(dir=folder):
            pass
    except OSError as exc:
        return Check(ok=False, detail=f"{folder} is not writable: {exc.strerror}")
    return Check(ok=True, detail=f"{folder} writable; artifact names are kept inside it")


async def system_checks(settings: Settings, nc: Client, dsn: str | None) -> SystemChecks:
    """Each check: ok and a detail; `ok` overall when the essential ones pass."""
    settings.home_path.mkdir(parents=True, exist_ok=True)
    checks = {
        "nats": Check(
            ok=nc.is_connected, detail="connected" if nc.is_connected else "reconnecting"
        ),
        "postgresql": await _postgres(dsn),
        "milvus": await _memory(nc),
        "model_credentials": Check(
            ok=read_secret("ANTHROPIC_API_KEY") is not None,
            detail="an Anthropic key is present"
            if read_secret("ANTHROPIC_API_KEY")
            else "no model key: CIs answer with the offline simulated model",
        ),
        "repository": Check(
            ok=shutil.which("git") is not None and shutil.which("bwrap") is not None,
            detail="git and bubblewrap are installed (workspaces, and checks in a sandbox)"
            if shutil.which("git") and shutil.which("bwrap")
            else "git or bubblewrap (bwrap) is missing: runs with a repository cannot "
            "apply and check their change here",
        ),
        "sandbox": await asyncio.to_thread(_writable, str(settings.home_path)),
    }
    return SystemChecks(ok=checks["nats"].ok and checks["sandbox"].ok, checks=checks)
