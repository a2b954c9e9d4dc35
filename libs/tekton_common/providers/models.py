"""Model choice: profiles, capability and stage mappings, Anthropic effort levels, prices.

Which model a CI uses, first match wins:

1. a per-request override (a debate's model override);
2. the global override (`--model`, ``TEKTON_MODEL``);
3. the CI's own ``[ci.<name>] model`` in tekton.toml;
4. the stage's profile (``[models.stages]``), when the call belongs to a stage;
5. the CI's capability profile (``[models.capabilities]``: code, planning, reasoning,
   chat).

A value may be a profile name (``primary``, ``premium``, ``legacy``, or one you add
under ``[models.profiles]``) or a model spec: ``simulated``, an Anthropic id
(``claude-…``, or ``anthropic:claude-…``), ``openai:<model>`` for an
OpenAI-compatible endpoint (Ollama, vLLM, LM Studio), or ``local`` / ``local:<name>``
for the embedded llama.cpp server (`providers.local`).
"""

from __future__ import annotations

import msgspec

from tekton_common.wire import Usage

#: defaults chosen from the ids the installed anthropic SDK lists and does not mark
#: deprecated (tests/unit/test_models.py checks they still are the newest such ids)
PRIMARY = "claude-sonnet-5-5"
PREMIUM = "claude-opus-5-5"
LEGACY = "claude-3-5-sonnet-20241022"

DEFAULT_PROFILES = {"primary": PRIMARY, "premium": PREMIUM, "legacy": LEGACY}
DEFAULT_CAPABILITIES = {
    "chat": "primary",
    "code": "primary",
    "planning": "primary",
    "reasoning": "premium",
}
#: Anthropic's current API takes an effort level instead of a temperature
EFFORT = {"chat": "low", "code": "medium", "planning": "high", "reasoning": "high"}


class Price(msgspec.Struct, frozen=True):
    """US dollars per million tokens."""

    input: float
    output: float
    cache_write: float
    cache_read: float


#: keyed by model-id prefix, longest prefix wins; override under [models.prices."<prefix>"]
DEFAULT_PRICES = {
    "claude-opus": Price(input=15.0, output=75.0, cache_write=18.75, cache_read=1.5),
    "claude-sonnet": Price(input=3.0, output=15.0, cache_write=3.75, cache_read=0.3),
    "claude-3-5-sonnet": Price(input=3.0, output=15.0, cache_write=3.75, cache_read=0.3),
    "claude-haiku": Price(input=1.0, output=5.0, cache_write=1.25, cache_read=0.1),
}


class ModelConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """``[models]`` in tekton.toml."""

    profiles: dict[str, str] = {}
    capabilities: dict[str, str] = {}
    stages: dict[str, str] = {}
    prices: dict[str, Price] = {}

    def profile(self, name: str) -> str:
        """A profile's model spec, or `name` itself when it is not a profile."""
        return {**DEFAULT_PROFILES, **self.profiles}.get(name, name)

    def for_capability(self, capability: str) -> str:
        """The model spec for a capability."""
        return self.profile(
            {**DEFAULT_CAPABILITIES, **self.capabilities}.get(capability, "primary")
        )

    def price(self, model: str) -> Price | None:
        """The price entry with the longest prefix of `model`, if any."""
        table = {**DEFAULT_PRICES, **self.prices}
        matches = [p for p in table if model.startswith(p)]
        return table[max(matches, key=len)] if matches else None

    def cost(self, model: str, usage: Usage) -> float:
        """What `usage` on `model` cost, in US dollars (0 for unpriced models)."""
        price = self.price(model)
        if price is None:
            return 0.0
        return (
            usage.input_tokens * price.input
            + usage.output_tokens * price.output
            + usage.cache_creation_input_tokens * price.cache_write
            + usage.cache_read_input_tokens * price.cache_read
        ) / 1e6


def provider_kind(spec: str) -> str:
    """``simulated``, ``anthropic``, ``openai`` or ``local`` for a model spec."""
    if spec == "simulated":
        return "simulated"
    if spec.startswith("openai:"):
        return "openai"
    if spec == "local" or spec.startswith("local:"):
        return "local"
    if spec.startswith(("anthropic:", "claude-")):
        return "anthropic"
    raise ValueError(
        f"unknown model {spec!r}: use simulated, local[:<name>], claude-…, anthropic:… "
        "or openai:<model>"
    )


def model_id(spec: str) -> str:
    """The provider's own model id (the spec without its ``anthropic:``/``openai:`` prefix)."""
    return spec.split(":", 1)[1] if spec.startswith(("anthropic:", "openai:")) else spec
