"""The embedded platform for a benchmark: `tekton up` in a temporary home on free ports."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.helpers import free_base, free_port

TEKTON = [sys.executable, "-m", "tekton_cli.main"]


@contextmanager
def embedded_platform(**settings: str) -> Iterator[tuple[dict[str, str], Path]]:
    """Start everything (`tekton up`); yields the environment and the home folder."""
    with tempfile.TemporaryDirectory() as tmp:
        base = free_base(181)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TEKTON_", "ANTHROPIC_"))}
        env.update(
            {
                "TEKTON_HOME": f"{tmp}/home",
                "TEKTON_NATS_PORT": str(free_port()),
                "TEKTON_MILVUS_PORT": str(free_port()),
                "TEKTON_API_PORT": str(free_port()),
                "TEKTON_PORT_BASE": str(base),
                "TEKTON_CI_PORT_BASE": str(base + 100),
                **settings,
            }
        )
        subprocess.run([*TEKTON, "up"], env=env, check=True, capture_output=True)
        try:
            yield env, Path(tmp)
        finally:
            subprocess.run([*TEKTON, "down"], env=env, check=True, capture_output=True)


def nats_url(env: dict[str, str]) -> str:
    """The embedded nats-server's URL."""
    return f"nats://127.0.0.1:{env['TEKTON_NATS_PORT']}"
