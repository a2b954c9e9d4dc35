"""`python -m tekton_specialists --ci apollo` runs exactly one CI."""

from __future__ import annotations

import sys

from tekton_common.micro import EndpointDef
from tekton_common.process import run_ci
from tekton_common.service import ServiceContext
from tekton_specialists.budget import budget_extension
from tekton_specialists.tools import specialist_tools


def extensions(context: ServiceContext) -> list[EndpointDef]:
    """What some specialists serve beyond chat: their tools, and the Budget CI's ledger."""
    name = context.runtime.spec.name
    context.runtime.toolbox.add(*specialist_tools(name, context.nc, context.runtime.settings))
    if name == "budget":
        return budget_extension(context)
    return []


if __name__ == "__main__":
    sys.exit(run_ci(None, "tekton_specialists", extra=extensions))
