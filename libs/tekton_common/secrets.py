"""Secrets (model keys) come only from the environment or a secret file, never settings.

``NAME`` in the environment wins; else the file named by ``NAME_FILE``; else
``/run/secrets/<name in lower case>`` (docker compose and Kubernetes secrets).
"""

from __future__ import annotations

import hmac
import os
from pathlib import Path

from tekton_common.errors import ConfigError

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
    "TEKTON_API_TOKENS",
    "TEKTON_NATS_PASSWORD",
    "TEKTON_NATS_TOKEN",
    "TEKTON_SOCKET_TOKEN",
)


def _pairs() -> list[tuple[str, str]]:
    """``TEKTON_API_TOKENS`` as (name, token) pairs, as written."""
    text = (read_secret("TEKTON_API_TOKENS") or "").replace(",", "\n")
    pairs = (line.partition("=") for line in text.splitlines() if line.strip())
    return [(name.strip(), token.strip()) for name, _, token in pairs]


def named_tokens() -> dict[str, str]:
    """The API's named tokens, token → name, from the secret ``TEKTON_API_TOKENS``
    (``NAME=TOKEN`` pairs, one per line or comma-separated): a decision or an answer
    sent with one is that person's. ConfigError for a pair that is not one."""
    found: dict[str, str] = {}
    for name, token in _pairs():
        if not token or not name or not all(c.isalnum() or c in "_.@ -" for c in name):
            raise ConfigError(
                "TEKTON_API_TOKENS: NAME=TOKEN pairs, a name of letters, digits and _ . @ -"
            )
        found[token] = name
    return found


def api_tokens() -> dict[str, str | None]:
    """Every bearer token the API (and the MCP bridge beside it) takes, token → the name
    it sends as: the named ones, and ``TEKTON_API_TOKEN`` (no name). Empty: no token is
    asked for."""
    tokens: dict[str, str | None] = dict(named_tokens())
    if (token := read_secret("TEKTON_API_TOKEN")) is not None:
        tokens[token] = None
    return tokens


def bearer(header: bytes, tokens: dict[str, str | None]) -> tuple[bool, str | None]:
    """Whether an ``Authorization`` header carries one of `tokens` (compared in
    constant time), and that token's name."""
    for candidate, name in tokens.items():
        if hmac.compare_digest(header, f"Bearer {candidate}".encode()):
            return True, name
    return False, None


def session_value(token: str, expires: int) -> str:
    """The dashboard's session cookie for `token`, good until `expires` (Unix seconds):
    the expiry and a MAC of it keyed by the token (a cookie read off a disk is not the
    token, it ends when it says, and a new token ends every session of the old one)."""
    mac = hmac.new(token.encode(), f"tekton dashboard session v1|{expires}".encode(), "sha256")
    return f"{expires}.{mac.hexdigest()}"


def session(cookie: str, tokens: dict[str, str | None], now: float) -> tuple[bool, str | None]:
    """Whether a session cookie was made from one of `tokens` (in constant time) and has
    not expired at `now`, and that token's name."""
    expires, _, _mac = cookie.partition(".")
    if not expires.isdigit() or int(expires) <= now:
        return False, None
    for candidate, name in tokens.items():
        if hmac.compare_digest(cookie.encode(), session_value(candidate, int(expires)).encode()):
            return True, name
    return False, None


def scrub(text: str) -> str:
    """`text` with the value of every secret in SECRET_NAMES replaced (each named token
    on its own too)."""
    values = [read_secret(name) for name in SECRET_NAMES]
    return redact(text, *values, *(token for _, token in _pairs()))


def failure(exc: BaseException, limit: int = 300) -> str:
    """An unexpected exception as a short message for a reply: its type and what it says,
    secrets scrubbed."""
    said = scrub(str(exc)).strip()
    said = said if len(said) <= limit else said[: limit - 3] + "..."
    return f"{type(exc).__name__}: {said}" if said else type(exc).__name__
