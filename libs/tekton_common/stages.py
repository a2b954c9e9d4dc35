"""The stage names of the Diamond pipeline, in order (no schema imports here)."""

from __future__ import annotations

from typing import Literal, get_args

#: a stage name, as a type (API schemas list the names from it)
Stage = Literal[
    "plan",
    "research",
    "plan_update",
    "code",
    "review",
    "threat",
    "integrate",
    "test_debug",
    "release",
]
DIAMOND: tuple[str, ...] = get_args(Stage)
