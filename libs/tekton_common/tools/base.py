"""A tool: a typed function over a CI's own data, and who may call it.

A `Tool` is defined where its data lives (Numa's status in Numa's process, the ledger in
the Budget CI's) and served by that CI on ``tekton.ci.<name>.tool.<tool>.<caller>``. Its
input is a msgspec Struct that refuses unknown fields, so the JSON schema a model or an
MCP client sees is generated from the type the call is decoded into; its output is a
Struct too, with one line (`summary`) a person or the simulated model can quote.

Who may call what (`may_call`), least privilege first:

- a CI's own model: its CI's tools that are not sensitive; a sensitive one (a restart,
  a sandboxed command) only when ``[ci.<name>] tools`` names it exactly;
- another CI's model: only what ``[ci.<name>] tools`` grants (names or patterns such
  as ``budget_*``; a sensitive tool only by its exact name);
- an MCP client or the command line: every tool that is not sensitive, plus what
  ``mcp_tools`` names;
- any other caller: nothing.

The caller is the last token of the call's subject, which NATS permissions bind to the
caller's user (a CI may publish only ``tekton.ci.*.tool.*.<its id>``; ``mcp`` and
``operator`` only the operator's user, which the API and the command line connect as).
"""

from __future__ import annotations

import fnmatch
import functools
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import msgspec

from tekton_common.catalog import CI_NAMES
from tekton_common.contract.schemas import JsonSchema
from tekton_common.contract.tools import ToolSpec
from tekton_common.errors import ProtocolError, TektonError
from tekton_common.settings import Settings

#: callers that are no CI: an MCP client through the bridge, the command line
CLIENTS = ("mcp", "operator")


class NoInput(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """No input."""


class ToolRefusedError(TektonError):
    """Configuration does not let this caller call this tool (403)."""

    code = 403


class ToolInputError(ProtocolError):
    """A call whose input does not match the tool's schema (400)."""


class UnknownToolError(TektonError, LookupError):
    """A tool its CI does not have (404)."""

    code = 404


def _flat_schema(kind: type[Any]) -> JsonSchema:
    """A Struct's JSON schema with the Struct itself at the top (``$defs`` for the rest)."""
    made: JsonSchema = msgspec.json.schema(kind)
    ref = made.pop("$ref", None)
    if ref is None:
        return made
    defs = made.pop("$defs", {})
    top: JsonSchema = dict(defs.pop(ref.rsplit("/", 1)[-1]))
    top.pop("title", None)
    if defs:
        top["$defs"] = defs
    return top


@dataclass(frozen=True)
class Tool:
    """One tool of one CI (`ci`: its bare name, `name`: the tool's within it)."""

    ci: str
    name: str
    description: str
    input: type[msgspec.Struct]
    output: type[msgspec.Struct]
    run: Callable[[Any], Awaitable[Any]]
    summary: Callable[[Any], str]
    sensitive: bool = False
    keywords: tuple[str, ...] = ()

    @property
    def full_name(self) -> str:
        """``<ci>_<tool>``: what models and MCP clients call it."""
        return f"{self.ci}_{self.name}"

    @functools.cached_property
    def listed(self) -> ToolSpec:
        """How it is listed (made once: every free-text request offers it)."""
        return self.spec()

    def spec(self) -> ToolSpec:
        """How it is listed, made now."""
        return ToolSpec(
            name=self.full_name,
            ci=f"{self.ci}-ci",
            description=self.description,
            input_schema=_flat_schema(self.input),
            output_schema=_flat_schema(self.output),
            sensitive=self.sensitive,
            keywords=list(self.keywords),
        )

    def decode(self, raw: object) -> Any:
        """The typed input of a call (ToolInputError naming the bad field)."""
        if not isinstance(raw, dict):
            raise ToolInputError(f"{self.full_name}: input must be a JSON object")
        try:
            return msgspec.convert(raw, self.input)
        except msgspec.ValidationError as exc:
            raise ToolInputError(f"{self.full_name}: invalid input: {exc}") from None


def granted(patterns: Iterable[str], spec: ToolSpec) -> bool:
    """Whether a grant list names a tool (a sensitive one only by its exact name)."""
    names = list(patterns)
    if spec.sensitive:
        return spec.name in names
    return any(fnmatch.fnmatchcase(spec.name, p) for p in names)


def may_call(settings: Settings, caller: str, spec: ToolSpec) -> bool:
    """Whether `caller` (a CI id or a client) may call the tool (see the module doc)."""
    if caller in CLIENTS:
        return not spec.sensitive or spec.name in settings.mcp_tools
    name = caller.removesuffix("-ci")
    if name == caller or name not in CI_NAMES:
        return False
    grants = settings.ci[name].tools if name in settings.ci else []
    if f"{name}-ci" == spec.ci and not spec.sensitive:
        return True
    return granted(grants, spec)
