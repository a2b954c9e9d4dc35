"""NATS subject names, built in one place: those the contract fixes
(../shared/ARCHITECTURE.md, checked by tests/unit/test_contract_docs.py) and the
platform's own."""

from __future__ import annotations

from tekton_common.catalog import CIId
from tekton_common.contract.ids import check_id

#: subjects with a token in them, as templates (``{name}``: the bare CI name)
CI_CHAT = "tekton.ci.{name}.chat"
CI_STREAM = "tekton.ci.{name}.stream"
CI_INFO = "tekton.ci.{name}.info"
STAGE_RUN = "tekton.stage.{stage}.run"
RUN_EVENTS = "tekton.runs.{run_id}.events"
DEBATE_EVENTS = "tekton.debates.{debate_id}.events"
DEBATE_ANSWER = "tekton.debates.{debate_id}.answer"
TEAM_CHAT = "tekton.team.chat"
NUMA_STATUS = "tekton.numa.status"
RHETOR_DEBATE = "tekton.rhetor.debate"
RHETOR_TEAM = "tekton.rhetor.team"
RHETOR_ROSTER = "tekton.rhetor.roster"
RUNS_START = "tekton.runs.start"
RUNS_RESUME = "tekton.runs.resume"
RUNS_DECIDE = "tekton.runs.decide"
REGISTRY_BUCKET = "tekton-registry"
#: the platform's own (not in the contract): a failed run's blocked stage run again, a
#: run forked from another's stage, old runs pruned, a run exported and imported, the
#: stages' memory report, the Budget CI's ledger, usage records
RUNS_RETRY = "tekton.runs.retry"
RUNS_FORK = "tekton.runs.fork"
RUNS_PRUNE = "tekton.runs.prune"
RUNS_EXPORT = "tekton.runs.export"
RUNS_IMPORT = "tekton.runs.import"
MEMORY_INFO = "tekton.memory.info"
MEMORY_SEARCH = "tekton.memory.search"
MEMORY_KEEP = "tekton.memory.keep"
#: a run's repository for the specialists' tools (the stages service)
WORKSPACES_SEARCH = "tekton.workspaces.search"
SANDBOX_RUN = "tekton.sandbox.run"
BUDGET_USAGE = "tekton.budget.usage"
USAGE = "tekton.usage.{name}"
#: a CI's tools: the list, one tool's calls, and the event of every call served
CI_TOOLS = "tekton.ci.{name}.tools"
CI_TOOL = "tekton.ci.{name}.tool.{tool}.{caller}"
TOOL_EVENTS = "tekton.tools.events"
#: a service's unexpected failures (500s), as they happen
ERRORS = "tekton.errors"
#: what the supervisor publishes (restarts, crash loops) and answers (a restart)
FLEET_EVENTS = "tekton.fleet.events"
FLEET_RESTART = "tekton.fleet.restart"

#: every subject the contract fixes (../shared/ARCHITECTURE.md)
CONTRACT_SUBJECTS = (
    CI_CHAT,
    CI_STREAM,
    CI_INFO,
    TEAM_CHAT,
    RHETOR_DEBATE,
    RHETOR_TEAM,
    RHETOR_ROSTER,
    STAGE_RUN,
    RUNS_START,
    RUNS_RESUME,
    RUNS_DECIDE,
    RUN_EVENTS,
    DEBATE_EVENTS,
    DEBATE_ANSWER,
    NUMA_STATUS,
)
#: the platform's own subjects beside them
OWN_SUBJECTS = (
    RUNS_RETRY,
    RUNS_FORK,
    RUNS_PRUNE,
    RUNS_EXPORT,
    RUNS_IMPORT,
    MEMORY_INFO,
    MEMORY_SEARCH,
    MEMORY_KEEP,
    WORKSPACES_SEARCH,
    SANDBOX_RUN,
    BUDGET_USAGE,
    USAGE,
    CI_TOOLS,
    CI_TOOL,
    TOOL_EVENTS,
    ERRORS,
    FLEET_EVENTS,
    FLEET_RESTART,
)


def stage_run(stage: str) -> str:
    """A stage's endpoint: ``tekton.stage.<stage>.run``."""
    return STAGE_RUN.format(stage=check_id("stage", stage))


def debate_answers(debate_id: str) -> str:
    """Where a person answers a debate's human seat: ``tekton.debates.<id>.answer``."""
    return DEBATE_ANSWER.format(debate_id=check_id("debate id", debate_id))


def debate_events(debate_id: str) -> str:
    """Where a debate's events go: ``tekton.debates.<debate_id>.events``."""
    return DEBATE_EVENTS.format(debate_id=check_id("debate id", debate_id))


def ci_group(ci: CIId) -> str:
    """Micro group of a CI's endpoints: ``tekton.ci.<name>``."""
    return CI_CHAT.format(name=ci.name).removesuffix(".chat")


def ci_chat(ci: CIId) -> str:
    """Request/reply chat subject of a CI."""
    return CI_CHAT.format(name=ci.name)


def ci_stream(ci: CIId) -> str:
    """Streaming chat subject of a CI."""
    return CI_STREAM.format(name=ci.name)


def ci_tools(name: str) -> str:
    """Where a CI lists its tools: ``tekton.ci.<name>.tools``."""
    return CI_TOOLS.format(name=check_id("CI name", name))


def ci_tool(name: str, tool: str, caller: str) -> str:
    """Where `caller` (a CI's id, ``mcp`` or ``operator``) calls one tool of a CI:
    ``tekton.ci.<name>.tool.<tool>.<caller>``. The caller is in the subject so that NATS
    permissions bind it: a CI's user may publish only calls that name itself."""
    return CI_TOOL.format(
        name=check_id("CI name", name),
        tool=check_id("tool", tool),
        caller=check_id("caller", caller),
    )


def ci_tool_served(name: str, tool: str) -> str:
    """What a CI subscribes to for one tool: its calls from every caller."""
    return CI_TOOL.format(name=check_id("CI name", name), tool=check_id("tool", tool), caller="*")


def tool_caller(subject: str) -> str:
    """The caller a tool call's subject names (its last token)."""
    return subject.rsplit(".", 1)[-1]


def srv(verb: str, name: str | None = None) -> str:
    """Micro control subject, e.g. ``$SRV.PING`` or ``$SRV.INFO.apollo-ci``."""
    return f"$SRV.{verb.upper()}" + (f".{name}" if name else "")
