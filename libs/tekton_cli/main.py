"""Entry point of the `tekton` command."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from tekton_cli import fleet, output, status, talk, usage
from tekton_common import bus
from tekton_common.catalog import CATALOG
from tekton_common.errors import ConfigError, TektonError
from tekton_common.settings import Settings, load_settings

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
    p.add_argument("--timeout", type=float, default=30.0, help="seconds to wait per CI")
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

    p = sub.add_parser("team", help="broadcast to every CI; replies print as they arrive")
    p.add_argument("message", help="the message")
    p.add_argument("--deadline", type=float, default=10.0, help="seconds to gather replies")
    p.add_argument("--json", action="store_true", help="one JSON reply per line")

    p = sub.add_parser("usage", help="tokens and cost per CI, run or model, and budget verdicts")
    p.add_argument("--ci", help="only this CI")
    p.add_argument("--run", help="only this run id")
    p.add_argument("--json", action="store_true", help="the ledger's answer as JSON")

    p = sub.add_parser("ci", help="micro services on the bus (like `nats micro ls|info|stats`)")
    p.add_argument("verb", choices=["ls", "info", "stats"])
    p.add_argument("name", nargs="?", help="only this CI")
    p.add_argument("--json", action="store_true", help="raw $SRV replies as JSON")
    return parser


def _say(quiet: bool) -> fleet.Say:
    def say(line: str) -> None:
        if not quiet:
            print(line, flush=True)

    return say


async def dispatch(args: argparse.Namespace, settings: Settings) -> int:
    """Run one parsed command; returns the exit code."""
    as_json = getattr(args, "json", False)
    if args.command == "up":
        results = await fleet.up(settings, args.cis, _say(as_json), args.timeout)
        if as_json:
            output.print_json(results)
        ready = sum(r.ready for r in results)
        if not as_json:
            print(f"{ready}/{len(results)} CIs ready; logs in {settings.home_path / 'logs'}")
        return 0 if ready == len(results) else 1
    if args.command == "down":
        outcome = await fleet.down(settings, args.cis, _say(as_json), args.grace)
        if as_json:
            output.print_json(outcome)
        elif not outcome:
            print("nothing was running")
        return 0 if all(v != "still running after SIGKILL" for v in outcome.values()) else 1
    if args.command == "status":
        report = await status.fleet_status(settings)
        if as_json:
            output.print_json(report)
            return 0
        print(status.nats_line(settings, report))
        print(
            output.table(
                [
                    "CI",
                    "CI PORT",
                    "HTTP",
                    "PID",
                    "REGISTERED",
                    "ACTIVE",
                    "MODEL",
                    "LAST ACTIVITY",
                    "UPTIME",
                    "MEMORY",
                ],
                [
                    (
                        c.ci,
                        c.ci_port,
                        c.component_port,
                        c.pid or "-",
                        "yes" if c.registered else "no",
                        "yes" if c.active else "no",
                        c.model or "-",
                        output.ago(c.last_activity),
                        output.duration(c.uptime),
                        f"{c.memory_mb} MB" if c.memory_mb else "-",
                    )
                    for c in report.cis
                ],
            )
        )
        return 0
    if args.command == "ask":
        message = args.message
        if not sys.stdin.isatty():
            piped = sys.stdin.read()
            message = f"{message}\n\n{piped}" if message else piped
        if not message.strip():
            raise ConfigError("nothing to send: give a message or pipe text on stdin")
        await talk.ask(
            settings,
            args.ci,
            message,
            use_socket=args.socket,
            stream=args.stream,
            as_json=as_json,
            timeout=args.timeout,
        )
        return 0
    if args.command == "team":
        count = await talk.team(settings, args.message, deadline=args.deadline, as_json=as_json)
        return 0 if count else 1
    if args.command == "usage":
        ledger = await usage.usage(settings, args.ci, args.run)
        if as_json:
            output.print_json(ledger)
        else:
            print(usage.render(ledger))
        return 0
    verb = {"ls": "ping", "info": "info", "stats": "stats"}[args.verb]
    replies = await talk.probe(settings, verb, args.name)
    if as_json:
        output.print_json(replies)
    else:
        print(talk.render_probe(verb, replies) if replies else "no CI answered on the bus")
    return 0 if replies else 1


def main(argv: Sequence[str] | None = None) -> int:
    """`tekton …`: parse, load settings once, run, and turn errors into clear messages."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        # argparse fills optional positionals before later flags are seen, so
        # `tekton ask nous --stream "text"` leaves the message behind; take it here
        if args.command == "ask" and not args.message and not extra[0].startswith("-"):
            args.message = " ".join(extra)
        else:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        settings = load_settings(
            {"home": args.home, "nats_url": args.nats_url, "model": args.model}
        )
        return bus.run(dispatch(args, settings))
    except TektonError as exc:
        print(f"tekton: error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, ConfigError) else 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # the reader (say `| head`) left; exit quietly like other Unix tools
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
