"""Entry point of the API process."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import uvicorn

from tekton_api.app import create_app
from tekton_common.errors import TektonError
from tekton_common.history import history_dsn
from tekton_common.settings import load_settings
from tekton_common.telemetry import observe


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m tekton_api`."""
    parser = argparse.ArgumentParser(prog="tekton_api", description="Run the Tekton API.")
    parser.add_argument("--home", help="state folder (TEKTON_HOME)")
    parser.add_argument("--port", type=int, help="port (TEKTON_API_PORT, default 8090)")
    args = parser.parse_args(argv)
    try:
        settings = load_settings({"home": args.home, "api_port": args.port})
    except TektonError as exc:
        print(f"tekton_api: {exc}", file=sys.stderr)
        return 2
    observe("tekton-api", settings)
    app = create_app(settings, history_dsn(settings))
    uvicorn.run(app, host=settings.host, port=settings.api_port, log_config=None, access_log=False)
    return 0
