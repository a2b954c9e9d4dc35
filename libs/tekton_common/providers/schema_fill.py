"""Deterministic JSON instances of a JSON Schema, for the offline simulated model.

Covers what artifact and position schemas use (pydantic's output included): objects
with properties and required keys, arrays with minItems, strings (with enum, const,
minLength, format date-time), numbers and integers with bounds, booleans, nulls,
``anyOf``/``oneOf``/``allOf`` and local ``$ref`` into ``$defs``/``definitions``.
"""

from __future__ import annotations

import hashlib
from typing import Any

from tekton_common.contract.limits import MAX_SCHEMA_DEPTH
from tekton_common.contract.schemas import SchemaError

#: the deepest instance built (the contract's schema depth bounds what requests send)
MAX_DEPTH = MAX_SCHEMA_DEPTH


class SchemaFiller:
    """Builds one instance per (schema, seed); every string says it is simulated.

    `fixed` gives values for properties of that name wherever they appear.
    """

    def __init__(
        self, root: dict[str, Any], seed: str, label: str, fixed: dict[str, Any] | None = None
    ) -> None:
        self.root = root
        self.seed = seed
        self.label = label
        self.fixed = fixed or {}

    def _pick(self, path: str, n: int) -> int:
        digest = hashlib.sha256(f"{self.seed}\0{path}".encode()).digest()
        return digest[0] % n if n else 0

    def _resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        seen = 0
        while "$ref" in schema and seen < 32:
            ref = schema["$ref"]
            if not ref.startswith("#/"):
                raise SchemaError(f"only local $ref is supported, got {ref!r}")
            node: Any = self.root
            for part in ref[2:].split("/"):
                node = node[part]
            schema = {**node, **{k: v for k, v in schema.items() if k != "$ref"}}
            seen += 1
        return schema

    def fill(self, schema: dict[str, Any] | None = None, path: str = "$") -> Any:
        """An instance of `schema` (the root schema when None); a schema nested deeper
        than MAX_DEPTH (a recursive one that was not refused earlier) is a SchemaError."""
        if path.count(".") + path.count("[") > MAX_DEPTH:
            raise SchemaError(f"schema nests deeper than {MAX_DEPTH} levels at {path[:80]}")
        schema = self._resolve(self.root if schema is None else schema)
        if "const" in schema:
            return schema["const"]
        if "enum" in schema:
            return schema["enum"][self._pick(path, len(schema["enum"]))]
        for key in ("anyOf", "oneOf"):
            if key in schema:
                options = [o for o in schema[key] if self._resolve(o).get("type") != "null"]
                return self.fill((options or schema[key])[0], path)
        if "allOf" in schema:
            merged: dict[str, Any] = {}
            for part in schema["allOf"]:
                merged.update(self._resolve(part))
            return self.fill(merged, path)
        kind = schema.get("type", "object" if "properties" in schema else "string")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), "null")
        return getattr(self, f"_{kind}")(schema, path)

    def _object(self, schema: dict[str, Any], path: str) -> dict[str, Any]:
        props = schema.get("properties", {})
        return {
            name: self.fixed[name] if name in self.fixed else self.fill(sub, f"{path}.{name}")
            for name, sub in props.items()
        }

    def _array(self, schema: dict[str, Any], path: str) -> list[Any]:
        count = max(schema.get("minItems", 0), min(2, schema.get("maxItems", 2)))
        items = schema.get("items", {"type": "string"})
        return [self.fill(items, f"{path}[{i}]") for i in range(count)]

    def _string(self, schema: dict[str, Any], path: str) -> str:
        if schema.get("format") == "date-time":
            return "2026-01-01T00:00:00Z"
        name = path.rsplit(".", 1)[-1].split("[", 1)[0]
        text = f"simulated {name} from {self.label}"
        minimum = schema.get("minLength", 0)
        if len(text) < minimum:
            text += " ." * ((minimum - len(text)) // 2 + 1)
        maximum = schema.get("maxLength")
        return text[:maximum] if maximum else text

    def _number(self, schema: dict[str, Any], path: str) -> float:
        low = schema.get("minimum", schema.get("exclusiveMinimum", 0.0))
        high = schema.get("maximum", schema.get("exclusiveMaximum", low + 1.0))
        value = low + (high - low) * (0.7 + 0.25 * self._pick(path, 5) / 4)
        if "exclusiveMaximum" in schema and value >= high:
            value = (low + high) / 2
        return round(float(value), 3)

    def _integer(self, schema: dict[str, Any], path: str) -> int:
        low = int(schema.get("minimum", 0))
        high = int(schema.get("maximum", low + 3))
        return low + self._pick(path, high - low + 1)

    def _boolean(self, schema: dict[str, Any], path: str) -> bool:
        return True

    def _null(self, schema: dict[str, Any], path: str) -> None:
        return None
