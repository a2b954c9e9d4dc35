"""Least-privilege NATS users for a deployment: one per Tekton service.

Each service may publish and subscribe only where its work needs: a CI answers on its
own subjects and publishes its own usage; Rhetor asks CIs and publishes debate events;
the stages service owns the run stream; the Budget CI reads usage and writes verdicts;
Numa and the stages service may ping services. Every service reads its requests'
replies on its own inbox prefix (``_INBOX.<user>``, set by `bus.connect` when
``nats_user`` is set) and may answer the requests it receives. The ``tekton`` user is
the operator's (the command line): everything.

`render()` gives the ``authorization`` block of a nats-server configuration; passwords
are read by nats-server from environment variables (``$NATS_PASSWORD_<USER>``), never
written into the file.
"""

from __future__ import annotations

import json

from tekton_common.catalog import CATALOG, CISpec
from tekton_common.contract.workspaces import WORKSPACES_BUCKET

OPERATOR = "tekton"
STAGES = "tekton-stages"
SUPERVISOR = "tekton-supervisor"


def _stream(name: str) -> list[str]:
    """JetStream API subjects for one stream and its consumers."""
    return [
        f"$JS.API.STREAM.INFO.{name}",
        f"$JS.API.STREAM.CREATE.{name}",
        f"$JS.API.STREAM.MSG.GET.{name}",
        f"$JS.API.DIRECT.GET.{name}",
        f"$JS.API.DIRECT.GET.{name}.>",
        f"$JS.API.CONSUMER.*.{name}",
        f"$JS.API.CONSUMER.*.{name}.>",
        f"$JS.API.CONSUMER.MSG.NEXT.{name}.>",
        f"$JS.API.CONSUMER.DURABLE.CREATE.{name}.>",
    ]


def _kv(bucket: str, write: bool) -> list[str]:
    return _stream(f"KV_{bucket}") + ([f"$KV.{bucket}.>"] if write else [])


def _common(user: str) -> tuple[list[str], list[str]]:
    """What every service does: register, publish its usage, watch budget verdicts,
    answer micro discovery, read its inbox."""
    publish = [
        "$JS.API.INFO",
        "$JS.API.STREAM.NAMES",
        *_kv("tekton-registry", write=True),
        *_kv("tekton-budget", write=False),
        *_stream("TEKTON_USAGE"),
        "tekton.errors",  # its unexpected failures
    ]
    subscribe = [f"_INBOX.{user}.>", "$SRV.>"]
    return publish, subscribe


#: CIs whose tools read runs' events (the stream TEKTON_RUNS)
RUN_READERS = ("apollo", "telos", "metis", "prometheus", "rhetor")


def ci_rules(spec: CISpec) -> tuple[list[str], list[str]]:
    """Publish and subscribe allow lists of one CI's process."""
    user = str(spec.ci_id)
    publish, subscribe = _common(user)
    publish.append(f"tekton.usage.{spec.name}")
    # other CIs' tools, as itself (each CI decides what it grants whom), and the event
    # of each call it serves
    publish += ["tekton.ci.*.tools", f"tekton.ci.*.tool.*.{user}", "tekton.tools.events"]
    subscribe += [f"tekton.ci.{spec.name}.>", "tekton.team.chat"]
    if spec.name in RUN_READERS:  # their tools read runs' events
        publish += _stream("TEKTON_RUNS")
    if spec.name == "rhetor":
        publish += ["tekton.ci.*.chat", "tekton.ci.*.stream", "tekton.debates.>", "$SRV.PING.>"]
        publish += ["tekton.team.chat"]
        subscribe += ["tekton.rhetor.>", "tekton.debates.*.answer"]
    elif spec.name == "budget":
        publish += [*_kv("tekton-budget", write=True)]
        subscribe += ["tekton.budget.>"]
    elif spec.name == "engram":  # lessons, kept by the stages service
        publish += ["tekton.memory.search", "tekton.memory.keep"]
    elif spec.name == "athena":  # a run's repository, held by the stages service
        publish += ["tekton.workspaces.search"]
    elif spec.name == "terma":  # a command in a run's sandbox (a sensitive tool)
        publish += ["tekton.sandbox.run"]
    elif spec.name == "hermes":  # its services tool asks every micro service
        publish += ["$SRV.INFO", "$SRV.INFO.>"]
    elif spec.name == "sophia":  # its measurements: every service's micro stats
        publish += ["$SRV.STATS", "$SRV.STATS.>"]
    elif spec.name == "numa":
        publish += ["$SRV.>", "tekton.fleet.restart"]
        subscribe += ["tekton.numa.>", "tekton.fleet.events", "tekton.tools.events"]
        subscribe += ["tekton.errors"]
    return publish, subscribe


def stages_rules() -> tuple[list[str], list[str]]:
    """The stages service: stage endpoints, the run coordinator and the recorder."""
    publish, subscribe = _common(STAGES)
    publish += [
        "tekton.rhetor.debate",
        "tekton.stage.*.run",
        "tekton.runs.*.events",
        "tekton.debates.>",
        *_stream("TEKTON_RUNS"),
        "$JS.API.STREAM.PURGE.TEKTON_RUNS",  # a pruned run's events
        # the retention settings brought to the usage stream and the bucket (only here)
        "$JS.API.STREAM.UPDATE.TEKTON_USAGE",
        f"$JS.API.STREAM.UPDATE.OBJ_{WORKSPACES_BUCKET}",
        # runs' sources and results, exports and imports (the object store bucket)
        *_stream(f"OBJ_{WORKSPACES_BUCKET}"),
        f"$JS.API.STREAM.PURGE.OBJ_{WORKSPACES_BUCKET}",
        f"$O.{WORKSPACES_BUCKET}.>",
    ]
    subscribe += [
        "tekton.stage.>",
        "tekton.runs.start",
        "tekton.runs.resume",
        "tekton.runs.decide",
        "tekton.runs.retry",
        "tekton.runs.fork",
        "tekton.runs.prune",
        "tekton.runs.export",
        "tekton.runs.import",
        "tekton.memory.info",
        "tekton.memory.search",
        "tekton.memory.keep",
        "tekton.workspaces.search",
        "tekton.sandbox.run",
        "tekton.debates.>",
    ]
    return publish, subscribe


def users() -> dict[str, tuple[list[str], list[str]]]:
    """User → (publish allow list, subscribe allow list); the operator gets everything."""
    table = {str(spec.ci_id): ci_rules(spec) for spec in CATALOG}
    table[STAGES] = stages_rules()
    table[SUPERVISOR] = (
        ["tekton.fleet.events"],
        [f"_INBOX.{SUPERVISOR}.>", "tekton.fleet.restart"],
    )
    table[OPERATOR] = ([">"], [">"])
    return table


def password_variable(user: str) -> str:
    """The environment variable nats-server reads the user's password from."""
    return "NATS_PASSWORD_" + user.upper().replace("-", "_")


def render() -> str:
    """The ``authorization`` block of a nats-server configuration."""
    lines = ["authorization {", "  users = ["]
    for user, (publish, subscribe) in users().items():
        lines += [
            "    {",
            f"      user: {json.dumps(user)}",
            f"      password: ${password_variable(user)}",
            "      permissions: {",
            f"        publish: {{ allow: {json.dumps(publish)} }}",
            f"        subscribe: {{ allow: {json.dumps(subscribe)} }}",
            "        allow_responses: true",
            "      }",
            "    }",
        ]
    lines += ["  ]", "}"]
    return "\n".join(lines) + "\n"
