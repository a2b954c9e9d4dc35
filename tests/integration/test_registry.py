"""Registry records: appear, go stale, disappear; file fallback while NATS is away."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time

import nats

from tekton_common.registry import is_active, read_files, read_registry
from tekton_common.settings import load_settings
from tests.helpers import CIProc, Env, NatsServer, free_port, http_get, wait_for


def settings_for(env: Env):
    return load_settings(environ=env.vars())


async def test_record_appears_goes_stale_and_recovers(start_ci, env, nats_server) -> None:
    proc = start_ci("telos")
    settings = settings_for(env)
    nc = await nats.connect(nats_server.url)
    try:
        [record] = [r for r in await read_registry(settings, nc) if r.ci == "telos-ci"]
        assert record.pid == proc.proc.pid and record.ci_port == proc.ci_port
        assert record.model == "simulated" and is_active(record, settings)
        assert record.component_port == proc.http_port and record.version == "0.1.0"
        os.kill(proc.proc.pid, signal.SIGSTOP)  # frozen: no more heartbeats
        try:
            await asyncio.sleep(settings.stale_after + 0.5)
            [stale] = [r for r in await read_registry(settings, nc) if r.ci == "telos-ci"]
            assert not is_active(stale, settings)
        finally:
            os.kill(proc.proc.pid, signal.SIGCONT)

        async def fresh() -> bool:
            recs = [r for r in await read_registry(settings, nc) if r.ci == "telos-ci"]
            return bool(recs) and is_active(recs[0], settings)

        end = time.monotonic() + 5
        while not await fresh():
            assert time.monotonic() < end, "heartbeat did not resume"
            await asyncio.sleep(0.1)
    finally:
        await nc.close()


def test_register_ai_false_skips_registration(env, nats_server) -> None:
    env.extra["TEKTON_REGISTER_AI"] = "false"
    proc = CIProc(env, "sophia").wait_ready()
    try:
        settings = settings_for(env)
        assert read_files(settings) == []

        async def check() -> list:
            nc = await nats.connect(nats_server.url)
            try:
                return [r for r in await read_registry(settings, nc) if r.ci == "sophia-ci"]
            finally:
                await nc.close()

        assert asyncio.run(check()) == []
    finally:
        assert proc.terminate() == 0


def test_file_fallback_while_nats_is_down_then_kv(tmp_path) -> None:
    port = free_port()
    env = Env(
        home=tmp_path / "home",
        nats_url=f"nats://127.0.0.1:{port}",
        extra={"TEKTON_HEARTBEAT_INTERVAL": "0.3", "TEKTON_STALE_AFTER": "2"},
    )
    proc = CIProc(env, "hermes").wait_listening()
    settings = settings_for(env)
    try:
        assert wait_for(lambda: len(read_files(settings)) == 1, 5)
        [record] = read_files(settings)
        assert record.ci == "hermes-ci" and record.pid == proc.proc.pid
        assert is_active(record, settings)
        # the socket works without NATS; readiness says NATS is missing
        status, body = http_get(proc.http_port, "/readyz")
        assert status == 503 and json.loads(body)["nats"] is False
        # NATS arrives: the service connects by itself and moves its record to KV
        server = NatsServer(tmp_path / "nats", port=port).start()
        try:
            proc.wait_ready(20)
            assert wait_for(lambda: read_files(settings) == [], 10)

            async def kv_keys() -> list[str]:
                nc = await nats.connect(server.url)
                try:
                    kv = await nc.jetstream().key_value("tekton-registry")
                    return await kv.keys()
                finally:
                    await nc.close()

            assert any(k.startswith("hermes-ci.") for k in asyncio.run(kv_keys()))
            # NATS goes away again: the heartbeat falls back to the file
            server.stop()
            assert wait_for(lambda: len(read_files(settings)) == 1, 15)
            # and comes back: the service reconnects by itself and returns to KV
            server = NatsServer(tmp_path / "nats", port=port).start()
            assert wait_for(lambda: read_files(settings) == [], 20)
            assert wait_for(lambda: http_get(proc.http_port, "/readyz")[0] == 200, 10)
            assert any(k.startswith("hermes-ci.") for k in asyncio.run(kv_keys()))
        finally:
            server.stop()
    finally:
        assert proc.terminate() == 0
    assert read_files(settings) == []  # deregistered on SIGTERM, even from the file
