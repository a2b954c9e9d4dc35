"""The schema a grammar-constrained server (llama.cpp, and others of its kind) is held to.

Such a server turns the JSON Schema into a grammar, and a small model then writes
whatever the grammar lets it: every list filled to ``maxItems``, the same sentence again
and again. llama.cpp's grammars also enforce an integer's bounds but not a number's, so
a confidence comes back as 123456789. `narrowed` returns a stricter copy that every
valid reply still satisfies: a bounded number becomes a choice of steps within its
bounds, and, when asked, lists and prose are shortened. The reply is still validated
against the original schema.
"""

from __future__ import annotations

import math
from typing import Any

from tekton_common.contract.schemas import JsonSchema

#: a string this long or shorter is prose that may be shortened (a diff is not)
PROSE = 2000
#: steps a number bounded within one unit is chosen from
STEPS = 10


def _number(node: dict[str, Any]) -> dict[str, Any]:
    low, high = node.get("minimum"), node.get("maximum")
    if not isinstance(low, int | float) or not isinstance(high, int | float) or low > high:
        return node
    if "multipleOf" in node or "exclusiveMinimum" in node or "exclusiveMaximum" in node:
        return node
    rest = {k: v for k, v in node.items() if k not in ("type", "minimum", "maximum")}
    if high - low <= 1:
        inner = {round(low + (high - low) * i / STEPS, 4) for i in range(1, STEPS)}
        steps = sorted({low, high, *(x for x in inner if low <= x <= high)})
        return {**rest, "enum": steps}
    if math.ceil(low) > math.floor(high):
        return node
    return {**rest, "type": "integer", "minimum": math.ceil(low), "maximum": math.floor(high)}


def _prose(node: dict[str, Any]) -> bool:
    free = not any(key in node for key in ("enum", "const", "pattern", "format"))
    return free and node.get("maxLength", 0) <= PROSE


def narrowed(schema: JsonSchema, max_items: int | None = None, max_chars: int | None = None) -> Any:
    """A copy of `schema` a grammar holds a model to (see the module docstring)."""

    def visit(node: Any) -> Any:
        if isinstance(node, list):
            return [visit(item) for item in node]
        if not isinstance(node, dict):
            return node
        out = {key: visit(value) for key, value in node.items()}
        kind = out.get("type")
        if kind == "number":
            out = _number(out)
        elif kind == "array" and max_items is not None:
            out["maxItems"] = max(
                out.get("minItems", 0), min(out.get("maxItems", max_items), max_items)
            )
        elif kind == "string" and max_chars is not None and _prose(out):
            limit = min(out.get("maxLength", max_chars), max_chars)
            out["maxLength"] = max(out.get("minLength", 0), limit)
        return out

    return visit(schema)
