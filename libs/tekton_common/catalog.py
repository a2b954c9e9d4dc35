"""The CI catalog: the 17 specialists, their fixed ports, roles and default model settings.

Ports follow the contract: CI port = ci_port_base + (component_port - port_base), with
component ports given relative to the default base 8000.
"""

from __future__ import annotations

from dataclasses import dataclass

from tekton_common.contract.ids import check_id
from tekton_common.errors import UnknownCIError

DEFAULT_PORT_BASE = 8000
DEFAULT_CI_PORT_BASE = 45000

#: older names people still type, mapped to the current bare name
#: the stages service is no CI, but has its HTTP port in the same span (8091 by default)
STAGES_PORT_OFFSET = 91

LEGACY_NAMES = {"penia": "budget", "noesis": "nous"}


@dataclass(frozen=True, slots=True)
class CIId:
    """A CI identifier such as ``apollo-ci``; `from_str` accepts every alias."""

    name: str

    def __str__(self) -> str:
        return f"{self.name}-ci"

    @classmethod
    def from_str(cls, text: str) -> CIId:
        """Parse ``apollo``, ``apollo-ci``, ``apollo-ai``, ``Apollo`` or a legacy name;
        a name that is no identifier at all (``*``, ``a.b``) is a 400, not a 404."""
        bare = check_id("CI", text.strip()).lower()
        for suffix in ("-ci", "-ai"):
            if bare.endswith(suffix):
                bare = bare[: -len(suffix)]
                break
        bare = LEGACY_NAMES.get(bare, bare)
        if bare not in _BY_NAME:
            known = ", ".join(sorted(_BY_NAME))
            raise UnknownCIError(f"unknown CI {text!r}; known CIs: {known}")
        return cls(bare)


@dataclass(frozen=True, slots=True)
class CISpec:
    """Everything the catalog knows about one CI."""

    name: str
    component: str
    port_offset: int
    role: str
    description: str
    capability: str
    temperature: float
    max_tokens: int
    prompt: str

    @property
    def ci_id(self) -> CIId:
        """The CI's identifier value object."""
        return CIId(self.name)

    def component_port(self, port_base: int = DEFAULT_PORT_BASE) -> int:
        """HTTP port for /healthz, /readyz and /metrics."""
        return port_base + self.port_offset

    def ci_port(self, ci_port_base: int = DEFAULT_CI_PORT_BASE) -> int:
        """TCP port of the newline-delimited JSON socket protocol."""
        return ci_port_base + self.port_offset


def _spec(
    name: str,
    port: int,
    role: str,
    capability: str,
    temperature: float,
    focus: str,
) -> CISpec:
    component = name.capitalize()
    prompt = (
        f"You are {component}, the Tekton {role}. {focus} "
        "Answer precisely, state your assumptions, and say when you are unsure."
    )
    return CISpec(
        name=name,
        component=component,
        port_offset=port - DEFAULT_PORT_BASE,
        role=role,
        description=f"{component}: {role}",
        capability=capability,
        temperature=temperature,
        max_tokens=4096,
        prompt=prompt,
    )


CATALOG: tuple[CISpec, ...] = (
    _spec(
        "engram",
        8000,
        "memory curator",
        "chat",
        0.3,
        "You keep and recall what the team has learned.",
    ),
    _spec(
        "hermes",
        8001,
        "messaging and service registry",
        "chat",
        0.2,
        "You know which services exist and how messages reach them.",
    ),
    _spec(
        "ergon",
        8002,
        "agents and tools",
        "code",
        0.3,
        "You design agents and choose tools that get work done.",
    ),
    _spec(
        "rhetor",
        8003,
        "orchestrator of all CIs, prompts, models, debates",
        "reasoning",
        0.5,
        "You orchestrate debates between CIs and weigh their positions fairly.",
    ),
    _spec(
        "terma",
        8004,
        "terminal interface",
        "chat",
        0.3,
        "You turn intentions into safe terminal commands.",
    ),
    _spec(
        "athena",
        8005,
        "knowledge specialist",
        "reasoning",
        0.3,
        "You ground answers in facts and cite what they rest on.",
    ),
    _spec(
        "prometheus",
        8006,
        "strategic planning",
        "planning",
        0.6,
        "You plan milestones, sequence work and anticipate risks.",
    ),
    _spec(
        "harmonia",
        8007,
        "workflow orchestration",
        "planning",
        0.4,
        "You arrange workflows so steps fit together.",
    ),
    _spec(
        "telos",
        8008,
        "requirements",
        "planning",
        0.3,
        "You turn goals into testable requirements and acceptance criteria.",
    ),
    _spec(
        "synthesis",
        8009,
        "code synthesis and integration",
        "code",
        0.2,
        "You write and integrate code that passes its tests.",
    ),
    _spec(
        "metis",
        8011,
        "task breakdown",
        "planning",
        0.4,
        "You break goals into small, ordered, verifiable tasks.",
    ),
    _spec(
        "apollo",
        8012,
        "executive coordinator",
        "reasoning",
        0.4,
        "You coordinate the team and keep the goal in view.",
    ),
    _spec(
        "budget",
        8013,
        "token and cost guardian",
        "chat",
        0.2,
        "You watch token use and cost and stop waste.",
    ),
    _spec(
        "sophia",
        8014,
        "measurement and ML insight",
        "reasoning",
        0.4,
        "You measure, compare and draw conclusions from data.",
    ),
    _spec(
        "nous",
        8015,
        "discovery and insight",
        "reasoning",
        0.7,
        "You look for what others missed and propose new angles.",
    ),
    _spec(
        "numa",
        8016,
        "platform overseer",
        "chat",
        0.5,
        "You oversee the whole platform and report its state honestly.",
    ),
    _spec(
        "hephaestus",
        8080,
        "user interface craftsman",
        "code",
        0.5,
        "You build clear, usable interfaces.",
    ),
)

_BY_NAME: dict[str, CISpec] = {spec.name: spec for spec in CATALOG}
#: every CI's bare name, in alphabetical order
CI_NAMES: tuple[str, ...] = tuple(sorted(_BY_NAME))


def get_ci(name: str | CIId) -> CISpec:
    """Look a CI up by id, bare name or alias; raises UnknownCIError."""
    ci_id = name if isinstance(name, CIId) else CIId.from_str(name)
    return _BY_NAME[ci_id.name]


def fleet_order() -> list[CISpec]:
    """Start order of `tekton up`: every CI, Numa last (it reports on the others)."""
    return [spec for spec in CATALOG if spec.name != "numa"] + [_BY_NAME["numa"]]
