"""Shared foundation of every Tekton process: catalog, settings, wire, bus and service base."""

from __future__ import annotations

__version__ = "0.1.0"
