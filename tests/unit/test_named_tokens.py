"""The API's named tokens: NAME=TOKEN pairs read from the secret, refused when not
pairs, and every token scrubbed from messages on its own; the one token set the API
and its MCP bridge take."""

from __future__ import annotations

import pytest

from tekton_api.main import _mcp_socket
from tekton_common.errors import ConfigError
from tekton_common.secrets import (
    api_tokens,
    bearer,
    named_tokens,
    scrub,
    session,
    session_value,
)
from tekton_common.settings import load_settings
from tests.helpers import free_port


def test_named_tokens_are_pairs_and_each_is_scrubbed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEKTON_API_TOKENS", "alice=tok-a1, bob smith = tok-b2\ncarol@x=tok-c3")
    assert named_tokens() == {"tok-a1": "alice", "tok-b2": "bob smith", "tok-c3": "carol@x"}
    assert scrub("sent tok-b2 and tok-c3") == "sent [redacted] and [redacted]"
    monkeypatch.delenv("TEKTON_API_TOKENS")
    assert named_tokens() == {}


@pytest.mark.parametrize("wrong", ["alice", "=tok", "alice=", "al;ice=tok"])
def test_a_pair_that_is_not_one_is_refused(monkeypatch: pytest.MonkeyPatch, wrong: str) -> None:
    monkeypatch.setenv("TEKTON_API_TOKENS", wrong)
    with pytest.raises(ConfigError, match="NAME=TOKEN pairs"):
        named_tokens()


def test_the_api_and_its_mcp_bridge_take_one_token_set(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    monkeypatch.setenv("TEKTON_API_TOKENS", "alice=tok-a1")
    monkeypatch.setenv("TEKTON_API_TOKEN", "tok-plain")
    tokens = api_tokens()
    assert tokens == {"tok-a1": "alice", "tok-plain": None}
    assert bearer(b"Bearer tok-a1", tokens) == (True, "alice")
    assert bearer(b"Bearer tok-plain", tokens) == (True, None)
    assert bearer(b"Bearer tok-a", tokens) == (False, None)
    # with no token, the bridge (it calls tools) is served on loopback only
    port = free_port()
    reachable = load_settings({"home": str(tmp_path), "host": "0.0.0.0", "mcp_port": port})
    assert _mcp_socket(reachable, {}) is None
    sock = _mcp_socket(load_settings({"home": str(tmp_path), "mcp_port": port}), {})
    assert sock is not None and sock.getsockname() == ("127.0.0.1", port)
    sock.close()


def test_a_dashboard_session_is_derived_from_its_token_and_ends_when_it_says() -> None:
    tokens = {"tok-a1": "alice", "tok-plain": None}
    now = 1_900_000_000
    cookie = session_value("tok-a1", now + 60)
    assert "tok-a1" not in cookie and cookie.startswith(f"{now + 60}.")
    assert session(cookie, tokens, now) == (True, "alice")
    assert session(session_value("tok-plain", now + 60), tokens, now) == (True, None)
    assert session(session_value("tok-a2", now + 60), tokens, now) == (False, None)  # not ours
    assert session(cookie, tokens, now + 61) == (False, None)  # expired
    later = cookie.replace(f"{now + 60}.", f"{now + 9999}.")
    assert session(later, tokens, now) == (False, None)  # an expiry moved on is not signed
    assert session("tok-a1", tokens, now) == (False, None)  # the token itself is no session
    assert session(cookie, {"tok-rotated": "alice"}, now) == (False, None)  # a new token
