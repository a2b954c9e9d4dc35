"""Plain-text tables and JSON output for the command line."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import Any

import msgspec


def print_json(value: Any) -> None:
    """Print a value as indented JSON (structs, dicts and lists alike)."""
    sys.stdout.write(msgspec.json.format(msgspec.json.encode(value), indent=2).decode() + "\n")


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Left-aligned columns separated by two spaces."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    )


def ago(timestamp: float | None) -> str:
    """'12s ago' style age of a timestamp."""
    if not timestamp:
        return "-"
    return f"{duration(time.time() - timestamp)} ago"


def duration(seconds: float | None) -> str:
    """A compact duration: 45s, 3m12s, 2h05m."""
    if seconds is None:
        return "-"
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m"
