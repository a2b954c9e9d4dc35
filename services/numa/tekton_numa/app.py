"""Numa's process: the numa CI plus the ``tekton.numa.status`` endpoint and its tools."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from nats.micro.request import Request

from tekton_common.catalog import CATALOG, get_ci
from tekton_common.micro import EndpointDef
from tekton_common.process import run_ci
from tekton_common.service import ServiceContext
from tekton_common.subjects import NUMA_STATUS
from tekton_common.wire import encode
from tekton_numa.status import platform_status
from tekton_numa.tools import numa_tools


def main(argv: Sequence[str] | None = None) -> int:
    """Run Numa; `--components a,b,…` names the CIs the fleet is expected to have."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--components", default="")
    known, rest = pre.parse_known_args(argv)
    expected = [str(get_ci(c).ci_id) for c in known.components.split(",") if c.strip()] or [
        str(spec.ci_id) for spec in CATALOG
    ]

    def extra(context: ServiceContext) -> list[EndpointDef]:
        settings = context.runtime.settings
        context.runtime.toolbox.add(*numa_tools(context.nc, settings, expected, context.spawn))

        async def status(_request: Request) -> bytes:
            return encode(await platform_status(context.nc, context.runtime.settings, expected))

        return [EndpointDef("status", status, subject=NUMA_STATUS)]

    return run_ci(rest, "tekton_numa", fixed_ci="numa", extra=extra)
