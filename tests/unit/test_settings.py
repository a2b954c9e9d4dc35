from __future__ import annotations

from pathlib import Path

import pytest

from tekton_common.catalog import get_ci
from tekton_common.errors import ConfigError
from tekton_common.settings import load_settings, read_env_file


def test_defaults(tmp_path: Path) -> None:
    s = load_settings(environ={}, config_file=tmp_path / "none.toml")
    assert (s.port_base, s.ci_port_base, s.host, s.register_ai) == (8000, 45000, "127.0.0.1", True)
    assert s.embedded_nats and s.bus_url == "nats://127.0.0.1:4222"


def test_precedence_toml_envfile_env_flags(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    toml = tmp_path / "tekton.toml"
    toml.write_text(
        'port_base = 1000\nci_port_base = 2000\nnats_port = 3000\nlog_level = "DEBUG"\n'
        '[ci.apollo-ai]\ntemperature = 0.9\nmodel = "m1"\n'
    )
    (home / ".env.tekton").write_text(
        "# comment\nTEKTON_CI_PORT_BASE=2100\nexport TEKTON_NATS_PORT='3100'\nOTHER=1\n"
    )
    s = load_settings(
        flags={"nats_port": 3300, "home": None},
        environ={
            "TEKTON_HOME": str(home),
            "TEKTON_NATS_PORT": "3200",
            "TEKTON_REGISTER_AI": "false",
        },
        config_file=toml,
    )
    assert s.port_base == 1000  # toml only
    assert s.ci_port_base == 2100  # env file beats toml
    assert s.nats_port == 3300  # flag beats environment beats env file
    assert s.register_ai is False
    assert s.log_level == "DEBUG"
    override = s.ci_override(get_ci("apollo"))
    assert (override.temperature, override.model) == (0.9, "m1")
    assert s.ci_override(get_ci("athena")).temperature is None


def test_invalid_values_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="port_base"):
        load_settings(environ={"TEKTON_PORT_BASE": "eighty"}, config_file=tmp_path / "x")
    bad = tmp_path / "bad.toml"
    bad.write_text("port_base = [")
    with pytest.raises(ConfigError, match=r"bad\.toml"):
        load_settings(environ={}, config_file=bad)
    unknown_ci = tmp_path / "ci.toml"
    unknown_ci.write_text("[ci.zeus]\ntemperature = 1\n")
    with pytest.raises(LookupError, match="zeus"):
        load_settings(environ={}, config_file=unknown_ci)


def test_env_file_rejects_garbage(tmp_path: Path) -> None:
    f = tmp_path / ".env.tekton"
    f.write_text("JUSTAWORD\n")
    with pytest.raises(ConfigError, match=":1"):
        read_env_file(f)


def test_empty_nats_url_means_embedded(tmp_path: Path) -> None:
    s = load_settings(environ={"TEKTON_NATS_URL": ""}, config_file=tmp_path / "x")
    assert s.embedded_nats


def test_a_repositorys_checks_table_is_not_a_setting(tmp_path: Path) -> None:
    config = tmp_path / "tekton.toml"
    config.write_text('stage_timeout = 30\n[checks]\ntest = "pytest -q"\n')
    assert load_settings(environ={}, config_file=config).stage_timeout == 30


def test_an_external_mcp_server_is_never_given_tektons_own_secrets(tmp_path: Path) -> None:
    toml = tmp_path / "tekton.toml"
    toml.write_text(
        '[ci.apollo.mcp.notes]\ncommand = ["notes"]\ntools = ["lookup"]\n'
        'env = { NOTES_TOKEN = "NOTES_SECRET", KEY = "ANTHROPIC_API_KEY" }\n'
    )
    with pytest.raises(ConfigError, match=r"Tekton's own secrets: \['ANTHROPIC_API_KEY'\]"):
        load_settings(environ={}, config_file=toml)
    toml.write_text(
        '[ci.apollo.mcp.notes]\ncommand = ["notes"]\ntools = ["lookup"]\n'
        'env = { NOTES_TOKEN = "NOTES_SECRET" }\n'
    )
    assert load_settings(environ={}, config_file=toml).ci["apollo"].mcp["notes"].env == {
        "NOTES_TOKEN": "NOTES_SECRET"
    }
