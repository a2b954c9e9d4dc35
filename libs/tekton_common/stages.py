"""The stage names of the Diamond pipeline, in order (no schema imports here)."""

from __future__ import annotations

DIAMOND = (
    "plan",
    "research",
    "plan_update",
    "code",
    "review",
    "threat",
    "integrate",
    "test_debug",
    "release",
)
