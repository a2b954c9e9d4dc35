"""Command-line entry shared by every CI process (`python -m tekton_specialists --ci X`)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from tekton_common import bus
from tekton_common.catalog import get_ci
from tekton_common.errors import TektonError
from tekton_common.providers.select import provider_for
from tekton_common.runtime import CIRuntime
from tekton_common.service import CIService, ExtraEndpoints
from tekton_common.settings import load_settings
from tekton_common.telemetry import observe

log = logging.getLogger(__name__)


def process_parser(prog: str, fixed_ci: str | None) -> argparse.ArgumentParser:
    """Flags every CI process accepts; they override settings from files and environment."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Run one Tekton CI as its own process: a NATS micro service, the "
        "socket protocol on its CI port and HTTP health on its component port.",
    )
    if fixed_ci is None:
        parser.add_argument(
            "--ci", required=True, help="CI to run: id or alias (apollo, apollo-ci, apollo-ai)"
        )
    parser.add_argument("--home", help="state folder (TEKTON_HOME, default .tekton)")
    parser.add_argument("--nats-url", help="NATS server URL (TEKTON_NATS_URL)")
    parser.add_argument("--host", help="address to bind (TEKTON_HOST, default 127.0.0.1)")
    parser.add_argument("--port-base", type=int, help="component port base (default 8000)")
    parser.add_argument("--ci-port-base", type=int, help="CI port base (default 45000)")
    parser.add_argument("--model", help="model for this CI (TEKTON_MODEL)")
    return parser


def run_ci(
    argv: Sequence[str] | None,
    prog: str,
    fixed_ci: str | None = None,
    extra: ExtraEndpoints | None = None,
) -> int:
    """Parse flags, build the CI's runtime and serve until stopped; returns the exit code."""
    args = process_parser(prog, fixed_ci).parse_args(argv)
    flags = {k: v for k, v in vars(args).items() if k != "ci"}
    try:
        settings = load_settings(flags)
        spec = get_ci(fixed_ci or args.ci)
    except TektonError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    observe(str(spec.ci_id), settings)
    try:
        provider = provider_for(spec, settings)
    except TektonError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    runtime = CIRuntime(spec, settings, provider)
    return bus.run(CIService(runtime, extra).run())
