"""Build the provider a CI's configuration asks for."""

from __future__ import annotations

import logging

from tekton_common.catalog import CISpec
from tekton_common.errors import ConfigError
from tekton_common.providers.base import Provider
from tekton_common.providers.models import model_id, provider_kind
from tekton_common.providers.simulated import SimulatedProvider
from tekton_common.secrets import read_secret
from tekton_common.settings import Settings

log = logging.getLogger(__name__)


def choose_model(
    spec: CISpec, settings: Settings, stage: str | None = None, override: str | None = None
) -> str:
    """The model spec for a CI (see `providers.models` for the order of precedence).

    Without an Anthropic key, models that come from the defaults (capability or stage
    profiles) fall back to the offline simulated model; a Claude model named explicitly
    stays, and its calls fail with a clear "needs ANTHROPIC_API_KEY" error.
    """
    models = settings.models
    explicit = override or settings.model or settings.ci_override(spec).model
    if explicit:
        return models.profile(explicit)
    chosen = (
        models.profile(models.stages[stage])
        if stage and stage in models.stages
        else models.for_capability(spec.capability)
    )
    if provider_kind(chosen) == "anthropic" and not read_secret("ANTHROPIC_API_KEY"):
        return "simulated"
    return chosen


def build_provider(model: str, settings: Settings) -> Provider:
    """A provider instance for a model spec."""
    try:
        kind = provider_kind(model)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if kind == "simulated":
        return SimulatedProvider(
            latency_ms=settings.simulated_latency_ms,
            faults=settings.simulated_faults,
            seed=settings.simulated_seed,
        )
    if kind == "local":
        return _local(model, settings)
    if kind == "openai":
        from tekton_common.providers.openai_compat import OpenAICompatProvider  # noqa: PLC0415

        return OpenAICompatProvider(
            model_id(model),
            settings.openai_base_url,
            settings.models,
            api_key=read_secret("OPENAI_API_KEY"),
            max_retries=settings.provider_max_retries,
            timeout=settings.provider_timeout,
        )
    from tekton_common.providers.anthropic import AnthropicProvider  # noqa: PLC0415

    return AnthropicProvider(
        model_id(model),
        read_secret("ANTHROPIC_API_KEY"),
        settings.models,
        max_retries=settings.provider_max_retries,
        timeout=settings.provider_timeout,
    )


def _local(spec: str, settings: Settings) -> Provider:
    """The OpenAI-compatible provider on the embedded llama.cpp server (one model at a
    time: the one the ``local_model`` setting serves)."""
    from tekton_common.providers.local import PREFIX, local_name, served  # noqa: PLC0415
    from tekton_common.providers.openai_compat import OpenAICompatProvider  # noqa: PLC0415

    model = served(settings.local_model, settings.local_model_sha256)
    if spec != PREFIX and local_name(spec) != model.name:
        raise ConfigError(
            f"{spec} is not what the local server serves ({model.spec}): set "
            f"TEKTON_LOCAL_MODEL={local_name(spec)} (one local model at a time)"
        )
    return OpenAICompatProvider(
        model.spec,
        settings.local_url,
        settings.models,
        max_retries=settings.provider_max_retries,
        timeout=settings.provider_timeout,
        name="local",
        extra={"cache_prompt": True},
        grammar=(settings.local_max_items, settings.local_max_chars),
    )


def provider_for(spec: CISpec, settings: Settings) -> Provider:
    """The provider a CI process starts with."""
    model = choose_model(spec, settings)
    provider = build_provider(model, settings)
    log.info("%s uses %s model %s", spec.ci_id, provider.name, provider.model)
    return provider
