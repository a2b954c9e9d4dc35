"""The `tekton` command line: subcommands and their flags."""

from __future__ import annotations

import argparse
import os

from tekton_common.catalog import CATALOG
from tekton_common.contract.limits import DEFAULT_THRESHOLD

CI_NAMES = ", ".join(spec.name for spec in CATALOG)


def build_parser() -> argparse.ArgumentParser:
    """All subcommands and their flags."""
    parser = argparse.ArgumentParser(
        prog="tekton",
        description="Run and talk to the Tekton fleet of AI specialists (CIs). Each CI is "
        "its own process on NATS and on its fixed port. Settings come from tekton.toml, "
        "$TEKTON_HOME/.env.tekton, TEKTON_* variables and these flags.",
    )
    parser.add_argument("--home", help="state folder (TEKTON_HOME, default .tekton)")
    parser.add_argument("--nats-url", help="use this NATS server instead of the embedded one")
    parser.add_argument(
        "--model",
        help="model for every CI `up` starts (TEKTON_MODEL): "
        "simulated, a profile (primary, premium, legacy), claude-…, openai:…",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "up",
        help="start nats-server (embedded) and the CIs, Numa last",
        description="Start the embedded nats-server (unless TEKTON_NATS_URL "
        "is set) and each CI as its own detached process; wait until every "
        f"one is ready. CIs: {CI_NAMES}. Logs go to $TEKTON_HOME/logs.",
    )
    p.add_argument("cis", nargs="*", metavar="CI", help="CIs to start (default: all 17)")
    p.add_argument("--timeout", type=float, default=90.0, help="seconds to wait per process")
    p.add_argument("--json", action="store_true", help="print the result as JSON")

    p = sub.add_parser(
        "down",
        help="deregister and stop CIs (and nats-server when all stop)",
        description="Stop CIs in reverse start order (Numa first): SIGTERM, "
        "then SIGKILL after the grace period; remove their registry records. "
        "With no CI named, the embedded nats-server stops too.",
    )
    p.add_argument("cis", nargs="*", metavar="CI", help="CIs to stop (default: all)")
    p.add_argument("--grace", type=float, default=10.0, help="seconds before SIGKILL")
    p.add_argument("--json", action="store_true", help="print the result as JSON")

    p = sub.add_parser("status", help="per-CI ports, pid, registration, activity, memory")
    p.add_argument("--json", action="store_true", help="machine-readable output")

    p = sub.add_parser(
        "ask",
        help="ask one CI (stdin, when piped, is appended)",
        description="Send a message to one CI and print its reply. Text "
        "piped on stdin is appended: cat f | tekton ask athena 'Review'.",
    )
    p.add_argument("ci", help=f"CI id or alias ({CI_NAMES})")
    p.add_argument("message", nargs="?", default="", help="the message")
    p.add_argument("--socket", action="store_true", help="use the CI's socket port, not NATS")
    p.add_argument("--stream", action="store_true", help="print the reply as it streams")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for a reply")
    p.add_argument("--json", action="store_true", help="print the raw reply as JSON")

    p = sub.add_parser(
        "team",
        help="broadcast to every CI; replies print as they arrive",
        description="Without --mode or --to the message goes straight to "
        "every CI. With them, Rhetor moderates: pass_through (all replies), "
        "directed (only --to), synthesis (a mediator writes one answer), "
        "consensus (each CI votes; the weighted tally decides).",
    )
    p.add_argument("message", help="the message")
    p.add_argument("--deadline", type=float, default=10.0, help="seconds to gather replies")
    p.add_argument("--mode", choices=["pass_through", "directed", "synthesis", "consensus"])
    p.add_argument("--to", help="comma-separated CIs to address (default: all)")
    p.add_argument("--mediator", default="apollo", help="who writes the synthesis")
    p.add_argument("--json", action="store_true", help="one JSON reply per line")

    _rhetor_commands(sub)
    _run_commands(sub)

    p = sub.add_parser("usage", help="tokens and cost per CI, run or model, and budget verdicts")
    p.add_argument("--ci", help="only this CI")
    p.add_argument("--run", help="only this run id")
    p.add_argument("--json", action="store_true", help="the ledger's answer as JSON")

    p = sub.add_parser("ci", help="micro services on the bus (like `nats micro ls|info|stats`)")
    p.add_argument("verb", choices=["ls", "info", "stats"])
    p.add_argument("name", nargs="?", help="only this CI")
    p.add_argument("--json", action="store_true", help="raw $SRV replies as JSON")
    return parser


def _rhetor_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """debate and roster."""
    p = sub.add_parser(
        "debate",
        help="ask Rhetor for a triad debate and watch it live",
        description="Three debaters answer in parallel each round; the "
        "mediator reconciles into an artifact validated against the schema.",
    )
    p.add_argument("question", help="what to debate")
    p.add_argument("--stage", default="general", help="stage (chooses the default roles)")
    p.add_argument("--rounds", type=int, default=2, help="maximum rounds")
    p.add_argument(
        "--consensus-free", action="store_true", help="one proponent pass plus the mediator"
    )
    p.add_argument("--schema", default="decision", help="registered artifact schema name")
    p.add_argument(
        "--role",
        action="append",
        default=[],
        metavar="ROLE=CI",
        help="override a role (proponent, skeptic, pragmatist, mediator)",
    )
    p.add_argument("--model", dest="debate_model", help="model for every turn")
    p.add_argument("--token-budget", type=int, default=0, help="stop past this many tokens")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds to wait")
    p.add_argument("--json", action="store_true", help="print the whole result as JSON")

    p = sub.add_parser("roster", help="CIs Rhetor can use, their health and debate counters")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def _run_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """run and runs."""
    p = sub.add_parser(
        "run",
        help="carry a goal through the staged pipeline (Diamond)",
        description="Start a run in the stages service and show its stage "
        "timeline live. The run goes on if this command goes away.",
    )
    p.add_argument("--goal", help="what the run should achieve")
    p.add_argument(
        "--repo",
        help="repository to work on: its files are indexed for retrieval and the code "
        "stage's diff must pass git apply --check against it",
    )
    p.add_argument("--from", dest="from_stage", help="first stage")
    p.add_argument("--to", dest="to_stage", help="last stage")
    p.add_argument(
        "--consensus-free",
        nargs="+",
        default=[],
        metavar="STAGE",
        help="stages run as one proponent pass plus the mediator",
    )
    p.add_argument("--model", dest="run_model", help="model for every debate turn")
    p.add_argument(
        "--output",
        default="artifacts",
        type=os.path.abspath,
        help="where this command keeps its copy of the artifacts: OUTPUT/<run id> "
        "(default ./artifacts); the stages service keeps its own under $TEKTON_HOME",
    )
    p.add_argument("--max-rounds", type=int, default=2, help="debate rounds per stage (1-5)")
    p.add_argument(
        "--threshold",
        type=float,
        default=DEFAULT_THRESHOLD,
        help="confidence-weighted accept share that ends a debate early (0.5-1, default 2/3)",
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="print the stage order, roles and models; call nothing",
    )
    p.add_argument("--resume", metavar="RUN_ID", help="continue a run after its last stage")
    p.add_argument("--json", action="store_true", help="events as JSON lines")

    p = sub.add_parser(
        "trace",
        help="draw a run's trace across every process (from the local span files)",
        description="Draw the whole cross-process trace of a run as a tree: each span with "
        "its process, duration, tokens and cost. Reads $TEKTON_HOME/traces, where spans "
        "go when no OTLP exporter is configured.",
    )
    p.add_argument("run_id", help="the run")
    p.add_argument("--json", action="store_true", help="the span tree as JSON")

    p = sub.add_parser(
        "deploy",
        help="render the compose stack and Kubernetes workloads from the CI catalog",
        description="Write deploy/compose.yaml, deploy/k8s/base/tekton.yaml and "
        "deploy/k8s/base/catalog.yaml from the CI catalog (ports, commands, probes, "
        "limits). --check writes nothing and fails when the files differ from the catalog.",
    )
    p.add_argument("verb", choices=["render"])
    p.add_argument("--out", default="deploy", help="the deploy folder (default: deploy)")
    p.add_argument("--check", action="store_true", help="only compare; exit 1 on drift")

    p = sub.add_parser(
        "tui",
        help="runs in the terminal: list, live progress, transcripts, artifacts",
        description="A terminal UI on the Tekton API (started by `tekton up`): the runs, "
        "the selected run's stages as they advance, its debate transcript and artifacts. "
        "Keys: enter follows a run, a shows its artifacts, r refreshes, q quits.",
    )
    p.add_argument("--api", help="API base URL (default http://HOST:TEKTON_API_PORT)")

    p = sub.add_parser("runs", help="run history: list, show, events, artifacts, watch")
    p.add_argument("verb", choices=["list", "show", "events", "artifacts", "watch"])
    p.add_argument("run_id", nargs="?", help="the run (all verbs but list)")
    p.add_argument(
        "--output",
        type=os.path.abspath,
        help="artifacts: also write them to OUTPUT/<run id> on this machine",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
