"""Settings, read once at start-up into a frozen object and passed down.

Sources, later ones winning: built-in defaults, ``tekton.toml`` (top-level keys, plus
``[ci.<name>]`` tables for per-CI model settings), ``$TEKTON_HOME/.env.tekton``, the
environment (``TEKTON_<FIELD>``), then command-line flags.
"""

from __future__ import annotations

import io
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import msgspec

from tekton_common.catalog import CISpec, get_ci
from tekton_common.errors import ConfigError
from tekton_common.providers.models import ModelConfig
from tekton_common.secrets import SECRET_NAMES

ENV_PREFIX = "TEKTON_"


class McpServer(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """An external MCP server a CI uses: a command it starts (stdio) or a URL
    (streamable HTTP), and the tools of it the CI's model may call."""

    command: list[str] = []
    url: str | None = None
    #: environment for the command (its values are secrets' names to read, never values;
    #: never one of Tekton's own, such as ANTHROPIC_API_KEY)
    env: dict[str, str] = {}
    tools: list[str] = []

    def __post_init__(self) -> None:
        if bool(self.command) == bool(self.url):
            raise ValueError("an MCP server needs a command or a url (one of them)")
        if not self.tools:
            raise ValueError("an MCP server needs `tools`, the names its CI may call")
        if own := sorted(set(self.env.values()) & set(SECRET_NAMES)):
            raise ValueError(f"an MCP server may not be given Tekton's own secrets: {own}")


class CIOverride(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Per-CI settings from ``[ci.<name>]`` in tekton.toml."""

    model: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    prompt: str | None = None
    budget_tokens: int | None = None
    budget_cost_usd: float | None = None
    #: tools this CI's model may call beyond its own non-sensitive ones: ``<ci>_<tool>``
    #: names or patterns (``budget_*``); a sensitive tool only by its exact name
    tools: list[str] = []
    #: external MCP servers whose allowed tools join the CI's own (``[ci.<name>.mcp.<server>]``)
    mcp: dict[str, McpServer] = {}


class Settings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Every setting a Tekton process reads; see docs/configuration.md."""

    home: str = ".tekton"
    host: str = "127.0.0.1"
    nats_url: str | None = None
    nats_port: int = 4222
    stream_replicas: int = 1
    nats_user: str | None = None
    nats_nkey_seed_file: str | None = None
    nats_tls_ca: str | None = None
    nats_tls_cert: str | None = None
    nats_tls_key: str | None = None
    port_base: int = 8000
    api_port: int = 8090
    ci_port_base: int = 45000
    register_ai: bool = True
    heartbeat_interval: float = 5.0
    stale_after: float = 15.0
    model: str | None = None
    simulated_latency_ms: float = 0.0
    simulated_faults: str = ""
    simulated_seed: int = 0
    log_level: str = "INFO"
    trace_file_mb: float = 64.0
    trace_untraced_rate: float = 0.01
    debate_turn_timeout: float = 120.0
    #: how long a person's seat waits for its answer before it abstains (seconds)
    human_seat_timeout: Annotated[float, msgspec.Meta(gt=0)] = 1200.0
    stage_timeout: float = 1800.0
    stage_silence: float = 600.0
    resume_interrupted: bool = True
    #: runs that ended longer ago are pruned everywhere (docs/runs.md); 0 keeps them all
    run_retention_days: Annotated[float, msgspec.Meta(ge=0)] = 90.0
    #: days the usage stream keeps its records, and the workspaces bucket its objects
    usage_retention_days: Annotated[float, msgspec.Meta(ge=0)] = 30.0
    workspace_retention_days: Annotated[float, msgspec.Meta(ge=0)] = 30.0
    workspace_limit_mb: Annotated[float, msgspec.Meta(gt=0)] = 200.0
    repair_attempts: Annotated[int, msgspec.Meta(ge=0, le=5)] = 2
    check_timeout: Annotated[float, msgspec.Meta(gt=0)] = 600.0
    check_memory_mb: Annotated[int, msgspec.Meta(ge=64)] = 8192
    postgres_dsn: str | None = None
    milvus_uri: str | None = None
    milvus_port: int = 19530
    embedder: str = "auto"
    restart_backoff: float = 0.5
    restart_limit: int = 5
    restart_window: float = 60.0
    openai_base_url: str = "http://127.0.0.1:11434/v1"
    #: the local model (providers.local): a catalog name or a .gguf file's path
    local_model: str = "smollm2-135m"
    local_model_sha256: str | None = None
    local_port: Annotated[int, msgspec.Meta(ge=1, le=65535)] = 8092
    local_slots: Annotated[int, msgspec.Meta(ge=1, le=16)] = 3
    local_threads: Annotated[int, msgspec.Meta(ge=0, le=256)] = 0
    #: what the local model is held to in a reply: items per list, characters of prose
    local_max_items: Annotated[int, msgspec.Meta(ge=1, le=100)] = 3
    local_max_chars: Annotated[int, msgspec.Meta(ge=20, le=100_000)] = 400
    #: memory llama.cpp keeps earlier prompts in, to serve them again to any slot
    local_cache_mb: Annotated[int, msgspec.Meta(ge=0, le=65536)] = 1024
    #: seats of every run's debates, ``[STAGE:]ROLE=CI[@MODEL]`` (contract.seats)
    seats: list[str] = []
    #: stages whose artifact waits for a person's decision in every run (docs/runs.md)
    approve: list[str] = []
    provider_max_retries: int = 4
    provider_timeout: float = 120.0
    budget_policy: str = "enforce"
    budget_ci_tokens: int = 0
    budget_ci_cost_usd: float = 0.0
    budget_run_tokens: int = 0
    budget_run_cost_usd: float = 0.0
    #: model turns a reply may spend calling tools before it must answer
    tool_rounds: Annotated[int, msgspec.Meta(ge=0, le=16)] = 4
    #: the MCP bridge's streamable HTTP port (``tekton mcp``)
    mcp_port: Annotated[int, msgspec.Meta(ge=1, le=65535)] = 8093
    #: tools MCP clients may see beyond every non-sensitive one (names or patterns; a
    #: sensitive tool only by its exact name)
    mcp_tools: list[str] = []
    ci: dict[str, CIOverride] = {}
    models: ModelConfig = ModelConfig()

    @property
    def home_path(self) -> Path:
        """`home` as an absolute path."""
        return Path(self.home).expanduser().resolve()

    @property
    def embedded_nats(self) -> bool:
        """True when Tekton runs its own nats-server (no TEKTON_NATS_URL)."""
        return self.nats_url is None

    @property
    def bus_url(self) -> str:
        """The NATS URL every process connects to."""
        return self.nats_url or f"nats://127.0.0.1:{self.nats_port}"

    @property
    def memory_uri(self) -> str:
        """The Milvus every process uses: TEKTON_MILVUS_URI, else the embedded server."""
        return self.milvus_uri or f"http://127.0.0.1:{self.milvus_port}"

    @property
    def local_url(self) -> str:
        """The OpenAI-compatible base URL of the embedded local model server."""
        return f"http://127.0.0.1:{self.local_port}/v1"

    def ci_override(self, spec: CISpec) -> CIOverride:
        """The tekton.toml overrides for one CI (empty when none)."""
        return self.ci.get(spec.name, CIOverride())


_FIELDS = frozenset(Settings.__struct_fields__) - {"ci", "models"}


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        return {}
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    # a repository's own checks (tekton_common.checks), not a setting: running `tekton`
    # inside such a repository still works
    data.pop("checks", None)
    ci_tables = data.pop("ci", {})
    if not isinstance(ci_tables, dict):
        raise ConfigError(f"{path}: [ci] must be a table of CI names")
    data["ci"] = {get_ci(name).name: table for name, table in ci_tables.items()}
    return data


def read_env_file(path: Path) -> dict[str, str]:
    """A ``KEY=VALUE`` file read by python-dotenv's parser (comments, quotes, escapes and
    ``export``); a line that is no assignment is an error naming its line."""
    from dotenv.parser import parse_stream  # noqa: PLC0415 - only when a file exists

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    values: dict[str, str] = {}
    for binding in parse_stream(io.StringIO(text)):
        if binding.error or (binding.key is not None and binding.value is None):
            raise ConfigError(f"{path}:{binding.original.line}: expected KEY=VALUE")
        if binding.key is not None and binding.value is not None:
            values[binding.key] = binding.value
    return values


def _prefixed(source: Mapping[str, str]) -> dict[str, str]:
    picked: dict[str, str] = {}
    for key, value in source.items():
        field = key.removeprefix(ENV_PREFIX).lower()
        if key.startswith(ENV_PREFIX) and field in _FIELDS:
            picked[field] = value
    return picked


def load_settings(
    flags: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    config_file: Path | None = None,
) -> Settings:
    """Merge every source into one validated, frozen Settings."""
    env = dict(os.environ if environ is None else environ)
    given = {k: v for k, v in (flags or {}).items() if v is not None}
    toml_path = config_file or Path(env.get("TEKTON_CONFIG", "tekton.toml"))
    merged: dict[str, Any] = _read_toml(toml_path)
    home = given.get("home") or env.get("TEKTON_HOME") or merged.get("home") or ".tekton"
    merged.update(_prefixed(read_env_file(Path(home).expanduser() / ".env.tekton")))
    merged.update(_prefixed(env))
    merged.update(given)
    merged["home"] = str(home)
    for listed in (
        "seats",
        "approve",
        "mcp_tools",
    ):  # TEKTON_SEATS, TEKTON_APPROVE: comma-separated
        if isinstance(merged.get(listed), str):
            merged[listed] = [s.strip() for s in merged[listed].split(",") if s.strip()]
    for key in ("nats_url", "model", "postgres_dsn", "milvus_uri", "local_model_sha256"):
        if merged.get(key) == "":
            merged[key] = None
    try:
        settings = msgspec.convert(merged, Settings, strict=False)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"invalid setting: {exc}") from exc
    _check_lists(settings)
    return settings


def _check_lists(settings: Settings) -> None:
    """Seats and gated stages, named right (a typo is an error at start, not a run that
    fails at its first stage)."""
    from tekton_common.contract.seats import check_seats  # noqa: PLC0415 - no cycle
    from tekton_common.stages import STAGES  # noqa: PLC0415

    try:
        check_seats(settings.seats)
    except ValueError as exc:
        raise ConfigError(f"invalid setting seats: {exc}") from None
    unknown = [s for s in settings.approve if s not in STAGES]
    if unknown:
        raise ConfigError(f"invalid setting approve: unknown stage {unknown[0]!r}")
