"""Durations on the command line: ``90s``, ``30m``, ``2h``, ``7d`` or plain seconds."""

from __future__ import annotations

import re

from tekton_common.errors import ConfigError

UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 7 * 86400.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")


def seconds(option: str, value: str) -> float:
    """`value` in seconds; a ConfigError naming `option` when it is no duration."""
    found = _DURATION.match(value)
    if found is None:
        raise ConfigError(f"{option} {value!r}: a duration such as 90s, 30m, 2h or 7d")
    return float(found.group(1)) * UNITS[found.group(2) or "s"]
