"""Every message of the contract by name, and its JSON Schema generated from its Struct
(`tekton schema [NAME]`; docs/contract.md is made from the same)."""

from __future__ import annotations

from typing import Any

import msgspec

from tekton_common.contract import debates, events, history, platform, runs, tools, workspaces
from tekton_common.contract.schemas import JsonSchema
from tekton_common.usage import UsageBatch, UsageRecord
from tekton_common.wire import (
    ChatRequest,
    ErrorReply,
    HealthResponse,
    InfoResponse,
    Pong,
    RegistryRecord,
    Response,
    StreamChunk,
    StreamEnd,
    StreamError,
    StreamStart,
    TeamReply,
)

#: name → (Struct, where it travels)
MESSAGES: dict[str, tuple[Any, str]] = {
    "ChatRequest": (ChatRequest, "tekton.ci.<name>.chat|stream, the team chat, the CI port"),
    "Response": (Response, "the reply to a chat"),
    "StreamStart": (StreamStart, "a streamed reply, first"),
    "StreamChunk": (StreamChunk, "a streamed reply, each piece"),
    "StreamEnd": (StreamEnd, "a streamed reply, last"),
    "StreamError": (StreamError, "a streamed reply that failed"),
    "TeamReply": (TeamReply, "one CI's reply to tekton.team.chat"),
    "Pong": (Pong, "the CI port's reply to ping"),
    "HealthResponse": (HealthResponse, "the CI port's reply to health"),
    "InfoResponse": (InfoResponse, "tekton.ci.<name>.info, the CI port's reply to info"),
    "ErrorReply": (ErrorReply, "the CI port's reply to a request it could not serve"),
    "DebateRequest": (debates.DebateRequest, "tekton.rhetor.debate"),
    "DebateResult": (debates.DebateResult, "the reply to a debate"),
    "TeamRequest": (debates.TeamRequest, "tekton.rhetor.team"),
    "PositionReply": (debates.PositionReply, "what a debater's model answers (structured output)"),
    "OutcomeReply": (debates.OutcomeReply, "what the mediator's model answers (structured output)"),
    "RunRequest": (runs.RunRequest, "tekton.runs.start"),
    "ResumeRequest": (runs.ResumeRequest, "tekton.runs.resume"),
    "DecisionRequest": (runs.DecisionRequest, "tekton.runs.decide"),
    "DecisionMade": (runs.DecisionMade, "the reply to a decision"),
    "RetryRequest": (runs.RetryRequest, "tekton.runs.retry"),
    "ForkRequest": (runs.ForkRequest, "tekton.runs.fork"),
    "PruneRequest": (history.PruneRequest, "tekton.runs.prune"),
    "PruneReport": (history.PruneReport, "the reply to a prune"),
    "ExportRequest": (history.ExportRequest, "tekton.runs.export"),
    "ExportReady": (history.ExportReady, "the reply to an export"),
    "ImportRequest": (history.ImportRequest, "tekton.runs.import"),
    "ImportReport": (history.ImportReport, "the reply to an import"),
    "RunAccepted": (runs.RunAccepted, "the reply to a start, a resume, a retry or a fork"),
    "StageRequest": (runs.StageRequest, "tekton.stage.<stage>.run"),
    "StageOutcome": (runs.StageOutcome, "the reply of a stage"),
    "WorkspaceRef": (
        workspaces.WorkspaceRef,
        "a repository in the object store bucket tekton-workspaces (RunRequest.workspace)",
    ),
    "CheckSpec": (workspaces.CheckSpec, "a check a run is asked to run (RunRequest.checks)"),
    "CheckResult": (workspaces.CheckResult, "a check as it ran (ChecksFinished)"),
    "RunEvent": (events.AnyRunEvent, "tekton.runs.<run_id>.events (stream TEKTON_RUNS)"),
    "DebateEvent": (events.AnyDebateEvent, "tekton.debates.<debate_id>.events"),
    "TeamEvent": (platform.TeamEvent, "the replies to tekton.rhetor.team, a TeamResult last"),
    "TeamVote": (platform.TeamVote, "what a CI's model answers in a consensus exchange"),
    "Roster": (platform.Roster, "the reply to tekton.rhetor.roster"),
    "UsageQuery": (platform.UsageQuery, "tekton.budget.usage"),
    "UsageReport": (platform.UsageReport, "the reply to tekton.budget.usage"),
    "MemoryInfo": (platform.MemoryInfo, "the reply to tekton.memory.info"),
    "LessonQuery": (platform.LessonQuery, "tekton.memory.search"),
    "LessonHits": (platform.LessonHits, "the reply to tekton.memory.search"),
    "KeepLesson": (platform.KeepLesson, "tekton.memory.keep"),
    "LessonKept": (platform.LessonKept, "the reply to tekton.memory.keep"),
    "RepoSearch": (platform.RepoSearch, "tekton.workspaces.search"),
    "RepoHits": (platform.RepoHits, "the reply to tekton.workspaces.search"),
    "SandboxCommand": (platform.SandboxCommand, "tekton.sandbox.run"),
    "SandboxRan": (platform.SandboxRan, "the reply to tekton.sandbox.run"),
    "ErrorReported": (platform.ErrorReported, "tekton.errors (a service's unexpected failure)"),
    "RestartRequest": (platform.RestartRequest, "tekton.fleet.restart (the supervisor)"),
    "RestartReply": (platform.RestartReply, "the reply to tekton.fleet.restart"),
    "ToolListRequest": (tools.ToolListRequest, "tekton.ci.<name>.tools"),
    "ToolList": (tools.ToolList, "the reply to tekton.ci.<name>.tools"),
    "ToolInvocation": (tools.ToolInvocation, "tekton.ci.<name>.tool.<tool>.<caller>"),
    "ToolResult": (tools.ToolResult, "the reply to a tool call"),
    "ToolCalled": (tools.ToolCalled, "tekton.tools.events (every call a CI served)"),
    "MicroReply": (platform.MicroReply, "$SRV.PING|INFO|STATS (NATS micro, kept as sent)"),
    "RegistryRecord": (RegistryRecord, "KV bucket tekton-registry, key <ci>.<instance>"),
    "UsageRecord": (UsageRecord, "tekton.usage.<name> (stream TEKTON_USAGE), older senders"),
    "UsageBatch": (UsageBatch, "tekton.usage.<name> (stream TEKTON_USAGE)"),
}


def schema(name: str) -> JsonSchema:
    """The JSON Schema of one message (KeyError for an unknown name)."""
    made: JsonSchema = msgspec.json.schema(MESSAGES[name][0])
    return made


def markdown() -> str:
    """docs/contract.md: every message, where it travels, and its JSON Schema."""
    lines = [
        "# The contract as code",
        "",
        "Generated by `tekton schema --markdown` from the Structs in",
        "`libs/tekton_common/contract` and `tekton_common.wire`; do not edit by hand",
        "(tests/unit/test_contract_docs.py checks it is current).",
        "",
        "| message | where |",
        "|---|---|",
        *(f"| `{name}` | {where} |" for name, (_, where) in MESSAGES.items()),
    ]
    for name in MESSAGES:
        encoded = msgspec.json.format(msgspec.json.encode(schema(name)), indent=2).decode()
        lines += ["", f"## {name}", "", "```json", encoded, "```"]
    return "\n".join(lines) + "\n"
