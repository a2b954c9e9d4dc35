"""NATS subject names of the contract, built in one place."""

from __future__ import annotations

from tekton_common.catalog import CIId

TEAM_CHAT = "tekton.team.chat"
NUMA_STATUS = "tekton.numa.status"
RHETOR_DEBATE = "tekton.rhetor.debate"
RHETOR_TEAM = "tekton.rhetor.team"
RHETOR_ROSTER = "tekton.rhetor.roster"
REGISTRY_BUCKET = "tekton-registry"


def ci_group(ci: CIId) -> str:
    """Micro group of a CI's endpoints: ``tekton.ci.<name>``."""
    return f"tekton.ci.{ci.name}"


def ci_chat(ci: CIId) -> str:
    """Request/reply chat subject of a CI."""
    return f"{ci_group(ci)}.chat"


def ci_stream(ci: CIId) -> str:
    """Streaming chat subject of a CI."""
    return f"{ci_group(ci)}.stream"


def srv(verb: str, name: str | None = None) -> str:
    """Micro control subject, e.g. ``$SRV.PING`` or ``$SRV.INFO.apollo-ci``."""
    return f"$SRV.{verb.upper()}" + (f".{name}" if name else "")
