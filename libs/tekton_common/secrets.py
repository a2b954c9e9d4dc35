"""Secrets (model keys) come only from the environment or a secret file, never settings.

``NAME`` in the environment wins; else the file named by ``NAME_FILE``; else
``/run/secrets/<name in lower case>`` (docker compose and Kubernetes secrets).
"""

from __future__ import annotations

import os
from pathlib import Path

SECRETS_DIR = Path("/run/secrets")


def read_secret(name: str) -> str | None:
    """The secret's value, stripped, or None when it is not provided."""
    value = os.environ.get(name)
    if value:
        return value.strip()
    path = os.environ.get(f"{name}_FILE")
    candidates = [Path(path)] if path else [SECRETS_DIR / name.lower()]
    for candidate in candidates:
        try:
            text = candidate.read_text(encoding="utf-8").strip()
        except OSError:
            continue
        if text:
            return text
    return None


def redact(text: str, *secrets: str | None) -> str:
    """`text` with every given secret replaced, for messages that quote upstream errors."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    return text


#: every secret Tekton reads (model keys, bus and API credentials)
SECRET_NAMES = (
    "ANTHROPIC_API_KEY",
    "OPENAI_API_KEY",
    "TEKTON_API_TOKEN",
    "TEKTON_NATS_PASSWORD",
    "TEKTON_NATS_TOKEN",
    "TEKTON_SOCKET_TOKEN",
)


def scrub(text: str) -> str:
    """`text` with the value of every secret in SECRET_NAMES replaced."""
    return redact(text, *(read_secret(name) for name in SECRET_NAMES))


def failure(exc: BaseException, limit: int = 300) -> str:
    """An unexpected exception as a short message for a reply: its type and what it says,
    secrets scrubbed."""
    said = scrub(str(exc)).strip()
    said = said if len(said) <= limit else said[: limit - 3] + "..."
    return f"{type(exc).__name__}: {said}" if said else type(exc).__name__
