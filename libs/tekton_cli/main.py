"""Entry point of the `tekton` command."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

import nats.errors

from tekton_cli.commands import COMMANDS
from tekton_cli.parser import build_parser
from tekton_common import bus, spans, telemetry
from tekton_common.errors import ConfigError, ProtocolError, TektonError
from tekton_common.settings import load_settings


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
        observed = telemetry.setup("tekton-cli", settings)
        try:
            with spans.span(f"tekton {args.command}", {"tekton.command": args.command}):
                return bus.run(COMMANDS[args.command](args, settings))
        finally:
            observed.shutdown()
    except TektonError as exc:
        print(f"tekton: error: {exc}", file=sys.stderr)
        # a bad flag or value (found here, before anything was sent) is a usage error
        return 2 if isinstance(exc, ConfigError | ProtocolError) else 1
    except nats.errors.Error as exc:  # a NATS failure the command did not expect
        print(f"tekton: error: NATS: {exc or type(exc).__name__}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # the reader (say `| head`) left; exit quietly like other Unix tools
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
