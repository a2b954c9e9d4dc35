"""A CI's tools on the bus: the list a CI serves on ``tekton.ci.<name>.tools``, a call
on ``tekton.ci.<name>.tool.<tool>.<caller>`` and its result, and the event every call
leaves on ``tekton.tools.events``.

A tool is named ``<ci>_<tool>`` wherever a model or an MCP client sees it (model APIs
allow only letters, digits, ``_`` and ``-``); its input schema is generated from the
typed input the CI decodes the call into, so a call that does not match it is a 400
before any handler runs.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from tekton_common.contract.ids import Id, RunId
from tekton_common.contract.schemas import JsonObject, JsonSchema

#: ``<ci>_<tool>``: what models and MCP clients call a tool
TOOL_NAME_PATTERN = r"^[a-z][a-z0-9]*_[a-z][a-z0-9_]{0,40}$"
ToolName = Annotated[str, msgspec.Meta(pattern=TOOL_NAME_PATTERN, max_length=64)]
#: a tool's name within its CI (a subject token)
ShortName = Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9_]{0,40}$")]
#: who asks: a CI id, or ``mcp`` for an MCP client, ``operator`` for the command line
Caller = Id
#: a tool's input, as a model or a client gave it (decoded into the typed input)
MAX_INPUT_BYTES = 64 * 1024
#: what a model is shown of a result, at most
MAX_RESULT_CHARS = 16_000
#: a tool's output on the bus, at most (well under NATS's default 1 MB message)
MAX_OUTPUT_BYTES = 512 * 1024


class ToolSpec(msgspec.Struct, frozen=True, omit_defaults=True):
    """One tool as its CI lists it."""

    name: ToolName
    ci: Id
    description: str
    input_schema: JsonSchema
    output_schema: JsonSchema | None = None
    #: a restart, a command: never available unless configuration grants it by name
    sensitive: bool = False
    #: words that make the offline simulated model call it
    keywords: list[str] = []


class ToolList(msgspec.Struct, frozen=True, tag_field="type", tag="tool_list.v1"):
    """The reply to ``tekton.ci.<name>.tools``: the CI's tools, and which of them the
    asking caller may call."""

    ci: Id
    tools: list[ToolSpec]
    allowed: list[ToolName] = []


class ToolListRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A question for ``tekton.ci.<name>.tools`` (`caller` decides `allowed`, which only
    informs: a call is checked against the caller its subject names)."""

    caller: Caller = "operator"


class ToolInvocation(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A call on ``tekton.ci.<name>.tool.<tool>.<caller>`` (the caller is the subject's,
    never the body's: NATS permissions let a CI's user name only itself there)."""

    input: JsonObject = {}
    run_id: RunId | None = None


class ToolResult(msgspec.Struct, frozen=True, tag_field="type", tag="tool_result.v1"):
    """What a tool returned: its typed output as JSON, and one line a person reads."""

    tool: ToolName
    output: Any
    summary: str
    elapsed_s: float = 0.0


ToolOutcomeKind = Literal["ok", "refused", "invalid", "failed", "unknown"]


class ToolCalled(msgspec.Struct, frozen=True, tag_field="type", tag="tool_called.v1"):
    """One call, as the CI that served it saw it (``tekton.tools.events``)."""

    ci: Id
    tool: str
    caller: str
    outcome: ToolOutcomeKind
    elapsed_s: float
    error: str | None = None
    run_id: str | None = None
    ts: float = 0.0


class ModelToolCall(msgspec.Struct, frozen=True):
    """A model's request to call a tool within a reply (`id` as its API gave it)."""

    id: str
    name: str
    input: JsonObject = {}


class ModelToolAnswer(msgspec.Struct, frozen=True):
    """What a model is told a call of its returned (or why it failed: `error`)."""

    id: str
    name: str
    content: str
    error: bool = False


class ToolExchange(msgspec.Struct, frozen=True):
    """One tool round of a reply: the text and calls the model gave, and the answers."""

    text: str
    calls: list[ModelToolCall]
    answers: list[ModelToolAnswer]
