"""Model providers: one interface, chosen per CI from configuration (see `select`)."""

from __future__ import annotations

from tekton_common.providers.base import ModelReply, ModelRequest, OnChunk, Provider
from tekton_common.providers.simulated import SimulatedProvider

__all__ = ["ModelReply", "ModelRequest", "OnChunk", "Provider", "SimulatedProvider"]
