"""JSON Schemas that arrive in requests (a debate's artifact schema, a chat's structured
output), checked before anything uses them.

A schema is refused, with a 400 that names the problem, when it is larger than
`MAX_SCHEMA_BYTES` encoded, nests deeper than `MAX_SCHEMA_DEPTH`, has a ``$ref`` that is
not local (``#/…``), cannot be resolved, or leads back to itself (a recursive schema
would let a schema filler, or a model held to it by a grammar, go on without end).
`check_schema(…, meta=True)` also validates it against its JSON Schema meta-schema
(jsonschema is imported only then: Rhetor, not every CI).
"""

from __future__ import annotations

from typing import Any

import msgspec

from tekton_common.contract.limits import MAX_SCHEMA_BYTES, MAX_SCHEMA_DEPTH
from tekton_common.errors import ProtocolError

#: a JSON Schema (checked by `check_schema` where it arrives in a request)
JsonSchema = dict[str, Any]
#: a JSON object whose shape a JSON Schema gives, not a Struct: an artifact (its schema
#: named by the stage), a request's context; validated where that schema is known
JsonObject = dict[str, Any]

#: schemas that passed, by their encoding (at most ACCEPTED_KEPT, the oldest let go)
ACCEPTED_KEPT = 64
_accepted: dict[tuple[bool, bytes], None] = {}


class SchemaError(ProtocolError):
    """A JSON Schema from a request that cannot be used (400)."""


def _depth(schema: Any) -> int:
    deepest, todo = 0, [(schema, 1)]
    while todo:
        node, depth = todo.pop()
        deepest = max(deepest, depth)
        if depth > MAX_SCHEMA_DEPTH:
            break
        children = node.values() if isinstance(node, dict) else node
        if isinstance(node, dict | list):
            todo.extend((child, depth + 1) for child in children)
    return deepest


def _pointer(root: JsonSchema, ref: str) -> Any:
    if ref == "#" or not ref.startswith("#/"):
        raise SchemaError(
            f"$ref {ref!r}: only local references into the schema (#/$defs/…) are allowed, "
            "and not to the whole schema"
        )
    node: Any = root
    for raw in ref[2:].split("/"):
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise SchemaError(f"$ref {ref!r} does not resolve inside the schema")
    return node


def _refs(root: JsonSchema) -> None:
    """Every $ref resolves, and none leads back to a schema it is reached from."""
    done: set[str] = set()

    def visit(node: Any, path: tuple[str, ...]) -> None:
        if isinstance(node, list):
            for child in node:
                visit(child, path)
            return
        if not isinstance(node, dict):
            return
        ref = node.get("$ref")
        if ref is not None:
            if not isinstance(ref, str):
                raise SchemaError("$ref must be a string")
            if ref in path:
                raise SchemaError(f"$ref {ref!r} refers to itself (recursive schemas are refused)")
            target = _pointer(root, ref)
            if ref not in done:
                visit(target, (*path, ref))
                done.add(ref)
        for key, child in node.items():
            if key not in ("$ref", "const", "enum", "default", "examples"):
                visit(child, path)

    visit(root, ())


def check_schema(schema: object, *, meta: bool = False) -> JsonSchema:
    """`schema` when it can be used; SchemaError saying why not otherwise."""
    if not isinstance(schema, dict):
        raise SchemaError("a JSON Schema must be an object")
    encoded = msgspec.json.encode(schema)
    if (meta, encoded) in _accepted:  # debates send the same few schemas on every turn
        return schema
    size = len(encoded)
    if size > MAX_SCHEMA_BYTES:
        raise SchemaError(f"schema is {size} bytes; at most {MAX_SCHEMA_BYTES} are allowed")
    if _depth(schema) > MAX_SCHEMA_DEPTH:
        raise SchemaError(f"schema nests deeper than {MAX_SCHEMA_DEPTH} levels")
    _refs(schema)
    if meta:
        import jsonschema  # noqa: PLC0415 - only where debates are held (see docstring)

        try:
            jsonschema.validators.validator_for(schema).check_schema(schema)
        except jsonschema.SchemaError as exc:
            where = "/".join(map(str, exc.absolute_path)) or "(root)"
            raise SchemaError(f"not a valid JSON Schema at {where}: {exc.message}") from None
    _accepted[(meta, encoded)] = None
    if len(_accepted) > ACCEPTED_KEPT:
        _accepted.pop(next(iter(_accepted)))
    return schema
