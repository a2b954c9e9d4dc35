"""Messages in and out: JSON bytes to a typed Struct and back, with errors that name
the field.

A Struct built in code (``RunRequest(goal=…)``) is not range-checked by msgspec; a
message built with `make` or read with `decode` is, so a sender finds a bad value before
it leaves and a receiver refuses one that arrives.
"""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec

from tekton_common.errors import ProtocolError

T = TypeVar("T")
_encoder = msgspec.json.Encoder()


def encode(message: Any) -> bytes:
    """A message (Struct, or builtins) as JSON bytes."""
    return _encoder.encode(message)


def convert(obj: Any, kind: type[T], what: str | None = None) -> T:
    """Decoded JSON (or builtins) as `kind`; ProtocolError naming the bad field."""
    try:
        return msgspec.convert(obj, kind)
    except msgspec.ValidationError as exc:
        raise ProtocolError(f"invalid {what or kind.__name__}: {exc}") from None


def decode_object(data: bytes) -> dict[str, Any]:
    """Decode one JSON object, raising ProtocolError with a readable reason."""
    try:
        obj = msgspec.json.decode(data)
    except msgspec.DecodeError as exc:
        raise ProtocolError(f"invalid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise ProtocolError(f"expected a JSON object, got {type(obj).__name__}")
    return obj


def decode(data: bytes, kind: type[T], what: str | None = None) -> T:
    """JSON bytes as `kind`; ProtocolError with a readable reason otherwise."""
    return convert(decode_object(data), kind, what)


def make(kind: type[T], **fields: Any) -> T:
    """A message built from keyword fields and checked like one that arrived."""
    return convert({k: v for k, v in fields.items() if v is not None}, kind)
