"""The OpenAI-compatible provider against the real llama.cpp server (xllamacpp) serving
the packaged SmolLM2-135M: chat, streaming, a JSON schema held, usage with cached prompt
tokens, a server that is down, and a model file that is not the pinned one."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from tekton_common.contract.debates import MAX_POSITION, PositionReply, reply_schema
from tekton_common.errors import ProviderError
from tekton_common.providers.base import ModelRequest
from tekton_common.providers.local import CATALOG, served
from tekton_common.providers.select import build_provider
from tekton_common.settings import Settings, load_settings
from tekton_common.wire import Turn
from tests.helpers import free_port, http_get, wait_for

MODEL = "local:smollm2-135m"


def _env(home: Path, port: int, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEKTON_", "ANTHROPIC_"))}
    return {**env, "TEKTON_HOME": str(home), "TEKTON_LOCAL_PORT": str(port), **extra}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    home, port = tmp_path_factory.mktemp("local"), free_port()
    log = (home / "server.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tekton_cli.local_server"],
        env=_env(home, port, TEKTON_LOCAL_SLOTS="2"),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        loaded = wait_for(
            lambda: http_get(port, "/health")[0] == 200 or proc.poll() is not None, 120
        )
        assert loaded and proc.poll() is None, (home / "server.log").read_text()[-3000:]
        yield load_settings(environ=_env(home, port), config_file=home / "none.toml")
    finally:
        proc.terminate()
        assert proc.wait(30) == 0  # SIGTERM is a clean stop


def _ask(text: str, schema: dict | None = None, system: str = "You are Apollo.") -> ModelRequest:
    return ModelRequest(
        ci="apollo-ci",
        role="executive coordinator",
        capability="chat",
        system=system,
        messages=[Turn("user", text)],
        max_tokens=200,
        temperature=0.0,
        json_schema=schema,
    )


async def test_chat_names_the_model_and_counts_real_tokens(server: Settings) -> None:
    provider = build_provider("local", server)
    assert provider.name == "local"
    reply = await provider.complete(_ask("Name one colour."))
    assert reply.content.strip()
    assert reply.model == MODEL
    assert reply.usage.input_tokens + reply.usage.cache_read_input_tokens > 5
    assert 0 < reply.usage.output_tokens <= 200
    assert reply.cost_usd == 0.0


async def test_streaming_arrives_in_pieces_with_usage(server: Settings) -> None:
    provider = build_provider("local", server)
    chunks: list[str] = []

    async def keep(text: str) -> None:
        chunks.append(text)

    reply = await provider.stream(_ask("Count from one to ten in words."), keep)
    assert len(chunks) > 3 and "".join(chunks) == reply.content
    assert reply.model == MODEL
    assert len(chunks) <= reply.usage.output_tokens <= len(chunks) + 1  # the end token


async def test_the_schema_is_held_as_a_grammar(server: Settings) -> None:
    provider = build_provider("local", server)
    schema = reply_schema(PositionReply)
    for question in ("Should we ship on Friday?", "Is a cache worth it here?"):
        reply = await provider.complete(
            msgspec.structs.replace(
                _ask(question, schema, "You are a skeptic. Answer as JSON."), max_tokens=1500
            )
        )
        position = msgspec.json.decode(reply.content, type=PositionReply)  # valid as it is
        assert position.position.strip() and len(position.position) <= MAX_POSITION
        assert 0 <= position.self_confidence <= 1  # a number's bounds held too
        assert len(position.risks) <= server.local_max_items
        assert all(len(r) <= server.local_max_chars for r in position.risks)


async def test_a_repeated_prompt_is_served_from_the_cache(server: Settings) -> None:
    provider = build_provider("local", server)
    long = "Here is the context. " + " ".join(f"Fact {i} is true." for i in range(80))
    first = await provider.complete(_ask(long + " Summarise in five words."))
    again = await provider.complete(_ask(long + " Name the first fact."))
    assert first.usage.cache_read_input_tokens < 20
    # everything but the last sentence came from llama.cpp's prompt cache
    assert again.usage.cache_read_input_tokens > 200
    assert again.usage.cache_read_input_tokens > 5 * again.usage.input_tokens


async def test_a_server_that_is_down_is_a_clear_error(server: Settings) -> None:
    gone = msgspec.structs.replace(server, local_port=free_port(), provider_max_retries=0)
    with pytest.raises(ProviderError, match=r"apollo-ci: local:smollm2-135m at .* cannot connect"):
        await build_provider("local", gone).complete(_ask("hello"))


def test_another_local_model_than_the_one_served_is_refused(server: Settings) -> None:
    from tekton_common.errors import ConfigError  # noqa: PLC0415

    with pytest.raises(ConfigError, match="not what the local server serves"):
        build_provider("local:qwen-coder", server)


def test_a_model_file_with_another_sha256_is_not_loaded(tmp_path: Path) -> None:
    real = Path(served("smollm2-135m").path)
    assert real.stat().st_size == CATALOG["smollm2-135m"].size
    copy = tmp_path / "tampered.gguf"
    shutil.copyfile(real, copy)
    with copy.open("r+b") as fh:  # one byte changed deep in the weights
        fh.seek(real.stat().st_size // 2)
        byte = fh.read(1)
        fh.seek(-1, 1)
        fh.write(bytes([byte[0] ^ 0xFF]))
    pinned = CATALOG["smollm2-135m"].sha256
    port = free_port()
    env = _env(tmp_path, port, TEKTON_LOCAL_MODEL=str(copy), TEKTON_LOCAL_MODEL_SHA256=pinned)
    done = subprocess.run(
        [sys.executable, "-m", "tekton_cli.local_server"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert f"expected {pinned}" in done.stdout + done.stderr
    assert http_get(port, "/health")[0] == 0  # nothing was served
    # `tekton up` says so before it starts anything
    up = subprocess.run(
        [sys.executable, "-m", "tekton_cli.main", "--model", "local", "up"],
        env={**env, "TEKTON_NATS_PORT": str(free_port())},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert up.returncode == 2, up.stdout + up.stderr
    assert f"expected {pinned}" in up.stderr and "Traceback" not in up.stderr
    assert not (tmp_path / "run").exists()  # no process was started
