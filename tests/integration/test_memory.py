"""Retrieval memory against a real Milvus Lite server."""

from __future__ import annotations

from pathlib import Path

import pytest

from tekton_common.contract.runs import Chunk, Lesson
from tekton_stages.memory import Memory, MemoryUnavailableError
from tests.helpers import MilvusServer, free_port


@pytest.fixture
async def memory(milvus_server: MilvusServer) -> Memory:
    return Memory(milvus_server.uri, "hashing")


async def test_lessons_of_other_runs_are_recalled_for_the_same_stage(memory: Memory) -> None:
    await memory.remember(
        Lesson("run-a", "plan", "blocked", "Add rate limiting", "blocked: no rate budget named")
    )
    await memory.remember(
        Lesson("run-a", "code", "approved", "Add rate limiting", "approved: token bucket")
    )
    await memory.remember(
        Lesson("run-b", "plan", "approved", "Bake a cake", "approved: flour, eggs, oven")
    )
    found = await memory.recall("Add rate limiting to the API", "plan", exclude_run="run-new")
    assert [x.run_id for x in found] == ["run-a", "run-b"]  # closest first, plan only
    assert found[0].status == "blocked" and found[0].text == "blocked: no rate budget named"
    assert found[0].score > found[1].score
    # a run never recalls its own lessons (on resume they would be)
    mine = await memory.recall("Add rate limiting", "plan", exclude_run="run-a")
    assert [x.run_id for x in mine] == ["run-b"]
    # the same stage of the same run is replaced, not duplicated
    await memory.remember(Lesson("run-a", "plan", "approved", "Add rate limiting", "approved"))
    again = await memory.recall("Add rate limiting", "plan", exclude_run="x")
    assert [(x.run_id, x.status) for x in again].count(("run-a", "approved")) == 1
    assert len(again) == 2


async def test_repository_chunks_are_replaced_on_reindex(memory: Memory) -> None:
    repo = "/src/shop"
    chunks = [
        Chunk("limits.py", 1, 40, "def rate_limit(client, per_minute): token bucket"),
        Chunk("cart.py", 1, 40, "def add_to_cart(item): basket total"),
    ]
    assert await memory.index_repo(repo, chunks) == 2
    found = await memory.search_repo(repo, "rate limit each client")
    assert found[0].path == "limits.py" and (found[0].start, found[0].end) == (1, 40)
    assert await memory.search_repo("/src/other", "rate limit") == []  # repositories apart
    await memory.index_repo(repo, chunks[1:])
    assert [c.path for c in await memory.search_repo(repo, "rate limit")] == ["cart.py"]
    info = await memory.info()
    assert info.reachable and info.embedder == "hashing" and info.chunks == 1


async def test_unreachable_milvus_is_a_clear_error(tmp_path: Path) -> None:
    memory = Memory(f"http://admin:hunter2@127.0.0.1:{free_port()}", "hashing", timeout=2)
    with pytest.raises(MemoryUnavailableError) as caught:
        await memory.recall("anything", "plan", exclude_run="r")
    assert "Milvus at http://127.0.0.1:" in str(caught.value)
    assert "hunter2" not in str(caught.value)
    info = await memory.info()
    assert info.reachable is False and "hunter2" not in str(info)


async def test_memory_comes_back_with_the_server(tmp_path: Path) -> None:
    server = MilvusServer(tmp_path / "m").start(timeout=60)
    memory = Memory(server.uri, "hashing", timeout=3)
    await memory.remember(Lesson("r1", "plan", "approved", "goal", "kept"))
    server.stop()
    with pytest.raises(MemoryUnavailableError):
        await memory.recall("goal", "plan", exclude_run="r2")
    again = MilvusServer(tmp_path / "m", port=server.port).start(timeout=60)
    try:
        found = await memory.recall("goal", "plan", exclude_run="r2")
        assert [x.text for x in found] == ["kept"]  # the data survived the restart
    finally:
        again.stop()
