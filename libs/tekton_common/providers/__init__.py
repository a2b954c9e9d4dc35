"""Model providers: one interface, chosen per CI from configuration."""

from __future__ import annotations

from tekton_common.providers.base import ModelReply, ModelRequest, Provider
from tekton_common.providers.simulated import SimulatedProvider

__all__ = ["ModelReply", "ModelRequest", "Provider", "SimulatedProvider", "provider_for"]


def provider_for(model: str | None, latency_ms: float = 0.0) -> Provider:
    """The provider for a configured model; only the offline simulated one exists yet."""
    return SimulatedProvider(latency_ms=latency_ms)
