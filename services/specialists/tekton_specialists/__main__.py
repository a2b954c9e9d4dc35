"""`python -m tekton_specialists --ci apollo` runs exactly one CI."""

from __future__ import annotations

import sys

from tekton_common.micro import EndpointDef
from tekton_common.process import run_ci
from tekton_common.service import ServiceContext
from tekton_specialists.budget import budget_extension


def extensions(context: ServiceContext) -> list[EndpointDef]:
    """What some specialists serve beyond chat: the Budget CI keeps the ledger."""
    if context.runtime.spec.name == "budget":
        return budget_extension(context)
    return []


if __name__ == "__main__":
    sys.exit(run_ci(None, "tekton_specialists", extra=extensions))
