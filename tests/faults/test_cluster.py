"""A three-node NATS cluster with JetStream on loopback; one node is killed mid-run: the
run finishes and no event is lost."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import nats
import pytest

from tests.e2e.test_fleet_lifecycle import Fleet
from tests.faults.test_faults import finished_run, start_run_until_debating
from tests.helpers import BIN, LoopbackServer, free_port, wait_for

pytestmark = pytest.mark.slow


class ClusterNode(LoopbackServer):
    """One nats-server of the cluster (its routes: every node's cluster port)."""

    def __init__(self, store: Path, name: str, cluster_port: int, routes: list[int]) -> None:
        super().__init__(store)
        self.name, self.cluster_port, self.routes = name, cluster_port, routes

    def command(self) -> list[str]:
        routes = ",".join(f"nats://127.0.0.1:{p}" for p in self.routes)
        return [
            str(BIN / "nats-server"),
            "-js",
            "-sd",
            str(self.store),
            "-a",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-n",
            self.name,
            "--cluster_name",
            "tekton",
            "--cluster",
            f"nats://127.0.0.1:{self.cluster_port}",
            "--routes",
            routes,
        ]


async def _jetstream_ready(urls: list[str]) -> bool:
    try:
        nc = await nats.connect(urls, connect_timeout=2, max_reconnect_attempts=1)
    except Exception:
        return False
    try:
        info = await nc.jetstream(timeout=2).account_info()
        return info is not None
    except Exception:
        return False
    finally:
        await nc.close()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[list[ClusterNode]]:
    ports = [free_port() for _ in range(3)]
    nodes = [ClusterNode(tmp_path / f"n{i}", f"n{i}", ports[i], ports) for i in range(3)]
    for node in nodes:
        node.start()
    urls = [f"nats://127.0.0.1:{n.port}" for n in nodes]
    assert wait_for(lambda: asyncio.run(_jetstream_ready(urls)), 60, interval=1)
    yield nodes
    for node in nodes:
        node.stop()


def test_run_finishes_when_a_cluster_node_dies(tmp_path: Path, cluster: list[ClusterNode]) -> None:
    fleet = Fleet(tmp_path / "home")
    fleet.env.update(
        {
            "TEKTON_NATS_URL": ",".join(f"nats://127.0.0.1:{n.port}" for n in cluster),
            "TEKTON_STREAM_REPLICAS": "3",
            "TEKTON_SIMULATED_LATENCY_MS": "150",
            "TEKTON_DEBATE_TURN_TIMEOUT": "8",
            # a stage request or reply inside the dead node is lost: asked again after
            "TEKTON_STAGE_SILENCE": "25",
        }
    )
    try:
        fleet.up()
        run_id = start_run_until_debating(fleet, tmp_path)
        killed_at = time.time()
        assert cluster[0].proc is not None
        os.kill(cluster[0].proc.pid, signal.SIGKILL)  # the first node: where most connected
        finished_run(fleet, run_id, killed_at)
        # every CI heartbeats again (a KV write may still wait out the re-election)
        statuses: list[dict] = []

        def all_active() -> bool:
            statuses.append(fleet.json("status"))
            return all(c["active"] for c in statuses[-1]["cis"])

        assert wait_for(all_active, 30, interval=1), [
            c["ci"] for c in statuses[-1]["cis"] if not c["active"]
        ]
    finally:
        fleet.run("down", "--grace", "3")
