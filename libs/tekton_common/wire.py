"""Wire models shared by the socket protocol and the NATS endpoints (msgspec)."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from tekton_common.contract.codec import decode_object, encode
from tekton_common.contract.ids import RunId
from tekton_common.contract.limits import (
    MAX_HISTORY,
    CachePrefix,
    MaxTokens,
    ModelSpec,
    RequestId,
    Temperature,
)
from tekton_common.contract.schemas import JsonObject, JsonSchema, check_schema
from tekton_common.errors import ProtocolError

__all__ = ["decode_object", "encode"]  # the codec's, for the socket protocol and CIs

MAX_LINE_BYTES = 1024 * 1024


class Turn(msgspec.Struct, frozen=True):
    """One message of a conversation history."""

    role: str
    content: str


class Usage(msgspec.Struct):
    """Tokens a model call consumed."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0


TOKEN_FIELDS = (
    "input_tokens",
    "output_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
)


def total_tokens(counts: msgspec.Struct) -> int:
    """Every token of a usage-shaped Struct (the four token fields), cache writes and
    reads included."""
    return sum(int(getattr(counts, field)) for field in TOKEN_FIELDS)


def add_tokens(target: msgspec.Struct, usage: Usage) -> None:
    """Add `usage`'s token counts to a struct with the same four fields."""
    for field in TOKEN_FIELDS:
        setattr(target, field, getattr(target, field) + getattr(usage, field))


class ChatRequest(msgspec.Struct, frozen=True, omit_defaults=True):
    """A chat request; `message` is the older name of `content`. Ranges and sizes are
    the contract's (`tekton_common.contract.limits`); a structured-output schema is
    checked when the request is decoded."""

    content: str | None = None
    message: str | None = None
    history: Annotated[list[Turn], msgspec.Meta(max_length=MAX_HISTORY)] = []
    temperature: Temperature | None = None
    max_tokens: MaxTokens | None = None
    context: JsonObject | str | None = None
    stream: bool = False
    request_id: RequestId | None = None
    traceparent: Annotated[str, msgspec.Meta(max_length=512)] | None = None
    #: a JSON Schema the reply must follow (structured output)
    json_schema: JsonSchema | None = None
    #: leading history messages shared with other callers (prompt-cache breakpoint)
    cache_prefix: CachePrefix = 0
    run_id: RunId | None = None
    #: a per-request model (a debate's model override); the CI's own when None
    model: ModelSpec | None = None
    type: str = "chat"

    def __post_init__(self) -> None:
        if self.json_schema is not None:
            try:
                check_schema(self.json_schema)
            except ValueError as exc:
                raise ValueError(f"json_schema: {exc}") from None

    @property
    def text(self) -> str:
        """The user's message, whichever field carried it."""
        return self.content if self.content is not None else (self.message or "")


class Response(msgspec.Struct, omit_defaults=True, tag_field="type", tag="response"):
    """Reply to a chat request."""

    ai_id: str
    content: str
    model: str
    usage: Usage
    latency: float
    request_id: str | None = None
    cost_usd: float = 0.0


class StreamStart(msgspec.Struct, omit_defaults=True, tag_field="type", tag="stream_start"):
    """First message of a streamed reply."""

    ai_id: str
    model: str
    request_id: str | None = None


class StreamChunk(msgspec.Struct, omit_defaults=True, tag_field="type", tag="stream_chunk"):
    """One piece of a streamed reply."""

    content: str
    chunk_index: int
    request_id: str | None = None


class StreamEnd(msgspec.Struct, omit_defaults=True, tag_field="type", tag="stream_end"):
    """Last message of a streamed reply, with the call's usage."""

    ai_id: str
    model: str
    usage: Usage
    latency: float
    chunks: int
    request_id: str | None = None


class StreamError(msgspec.Struct, omit_defaults=True, tag_field="type", tag="stream_error"):
    """A streamed reply that failed part way."""

    ai_id: str
    error: str
    request_id: str | None = None


class Pong(msgspec.Struct, tag_field="type", tag="pong"):
    """Reply to ping."""

    ai_id: str
    timestamp: float


class HealthResponse(msgspec.Struct, tag_field="type", tag="health_response"):
    """Reply to health."""

    status: str
    component: str
    model: str
    ai_id: str


class InfoResponse(msgspec.Struct, tag_field="type", tag="info_response"):
    """Reply to info: what this CI is and which model it runs."""

    ai_id: str
    component: str
    description: str
    role: str
    model_provider: str
    model_name: str
    port: int
    component_port: int
    version: str


class ErrorReply(msgspec.Struct, omit_defaults=True, tag_field="type", tag="error"):
    """A request that could not be served; the connection stays usable."""

    ai_id: str
    error: str
    request_id: str | None = None


class TeamReply(msgspec.Struct):
    """One CI's answer to a team chat broadcast."""

    ai_id: str
    content: str
    model: str
    latency: float


class RegistryRecord(msgspec.Struct):
    """One running CI instance as stored in the registry."""

    ci: str
    instance: str
    component: str
    component_port: int
    ci_port: int
    model: str
    provider: str
    pid: int
    host: str
    version: str
    registered_at: float
    last_heartbeat: float
    last_activity: float
    status: str = "running"

    @property
    def key(self) -> str:
        """Registry key: ``<ci id>.<instance>``."""
        return f"{self.ci}.{self.instance}"


def to_chat_request(obj: dict[str, Any]) -> ChatRequest:
    """Validate a decoded object as a ChatRequest."""
    try:
        return msgspec.convert(obj, ChatRequest)
    except msgspec.ValidationError as exc:
        raise ProtocolError(f"invalid chat request: {exc}") from exc


_chat_decoder = msgspec.json.Decoder(ChatRequest)


def bus_chat_request(data: bytes) -> ChatRequest:
    """Read a NATS chat payload: a JSON object (decoded straight into the request, in
    one pass), or plain text taken as `content`."""
    stripped = data.strip()
    if not stripped.startswith(b"{"):
        try:
            text = stripped.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProtocolError("request is neither JSON nor UTF-8 text") from exc
        if not text:
            raise ProtocolError('empty request: send text or {"content": ...}')
        return ChatRequest(content=text)
    try:
        return _chat_decoder.decode(stripped)
    except msgspec.ValidationError as exc:
        raise ProtocolError(f"invalid chat request: {exc}") from exc
    except msgspec.DecodeError as exc:
        raise ProtocolError(f"invalid JSON: {exc}") from exc
