"""The API's named tokens: NAME=TOKEN pairs read from the secret, refused when not
pairs, and every token scrubbed from messages on its own."""

from __future__ import annotations

import pytest

from tekton_common.errors import ConfigError
from tekton_common.secrets import named_tokens, scrub


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
