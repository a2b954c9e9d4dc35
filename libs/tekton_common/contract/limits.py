"""Every numeric range and size bound of the contract, with the named defaults.

Each range is ``(low, high)`` inclusive and is used as `msgspec.Meta(ge=…, le=…)` in
the messages, so every endpoint that decodes a message checks it. Sizes bound what a
request may make a service hold or send on to a model.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

#: debate rounds a run or a debate may ask for
ROUNDS = (1, 5)
DEFAULT_ROUNDS = 2
#: confidence-weighted accept shares that end a debate early
THRESHOLD = (0.5, 1.0)
DEFAULT_THRESHOLD = 2 / 3
#: mediator repairs of an invalid artifact
REPAIRS = (0, 5)
DEFAULT_REPAIRS = 2
#: confidence below which the mediator's outcome blocks
DEFAULT_MIN_CONFIDENCE = 0.70
#: seconds one debate turn may take (the per-request override)
TURN_TIMEOUT = (0.1, 3600.0)
#: seconds a team chat gathers replies
TEAM_DEADLINE = (0.1, 600.0)
#: tokens one debate may spend (0: no limit)
TOKEN_BUDGET = (0, 100_000_000)
#: tokens one reply may have
MAX_TOKENS = (1, 128_000)
#: sampling temperature (OpenAI-compatible servers take 0-2; Anthropic's current API
#: takes an effort level instead and ignores it)
TEMPERATURE = (0.0, 2.0)
#: turns of history one chat request may carry
MAX_HISTORY = 200
#: leading history turns marked as a shared prefix
CACHE_PREFIX = (0, MAX_HISTORY)
#: characters of a run's goal
MAX_GOAL = 8000
#: characters of a debate's prompt
MAX_PROMPT = 200_000
#: characters of a model spec or profile name
MAX_MODEL = 200
#: characters of a request id (echoed back, never used as a subject)
MAX_REQUEST_ID = 200
#: a JSON Schema sent in a request: encoded bytes and nesting depth
MAX_SCHEMA_BYTES = 64 * 1024
MAX_SCHEMA_DEPTH = 32


def between(low: float, high: float) -> msgspec.Meta:
    """The msgspec constraint of an inclusive range."""
    return msgspec.Meta(ge=low, le=high)


Rounds = Annotated[int, between(*ROUNDS)]
Threshold = Annotated[float, between(*THRESHOLD)]
Repairs = Annotated[int, between(*REPAIRS)]
Confidence = Annotated[float, between(0.0, 1.0)]
TurnTimeout = Annotated[float, between(*TURN_TIMEOUT)]
TokenBudget = Annotated[int, between(*TOKEN_BUDGET)]
TeamDeadline = Annotated[float, between(*TEAM_DEADLINE)]
MaxTokens = Annotated[int, between(*MAX_TOKENS)]
Temperature = Annotated[float, between(*TEMPERATURE)]
CachePrefix = Annotated[int, between(*CACHE_PREFIX)]
Goal = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_GOAL)]
Prompt = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_PROMPT)]
#: a model spec or profile: simulated, primary, claude-…, openai:…, local:…
MODEL_SPEC = r"^[A-Za-z0-9_.:/@+-]+$"
ModelSpec = Annotated[str, msgspec.Meta(pattern=MODEL_SPEC, min_length=1, max_length=MAX_MODEL)]
RequestId = Annotated[str, msgspec.Meta(max_length=MAX_REQUEST_ID)]
