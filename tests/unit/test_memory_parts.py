"""Embedders, repository chunks, `git apply --check` and stage prompts (no servers)."""

from __future__ import annotations

import math
import subprocess
from pathlib import Path

import pytest

from tekton_common.contract.runs import Chunk, Lesson, Recall, StageRequest
from tekton_common.errors import ConfigError
from tekton_common.providers.simulated import SIMULATED_FILE, simulated_diff
from tekton_stages.embeddings import HashingEmbedder, load_embedder, model_installed
from tekton_stages.memory import public_uri
from tekton_stages.repo import chunk_repo
from tekton_stages.stage import stage_prompt
from tekton_stages.worktrees import DiffRefusedError, apply_diff


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def closeness_holds(embedder) -> None:  # type: ignore[no-untyped-def]
    near, close, far = embedder.embed(
        [
            "add rate limiting to the public API",
            "rate limit the API requests of each client",
            "bake a chocolate cake for the party",
        ]
    )
    assert len(near) == embedder.dim == 384
    assert math.isclose(math.sqrt(sum(v * v for v in near)), 1.0, rel_tol=1e-3)
    assert cosine(near, close) > cosine(near, far) + 0.2


def test_hashing_embedder_is_deterministic_and_ranks_shared_words() -> None:
    embedder = HashingEmbedder()
    assert embedder.embed(["same text"]) == embedder.embed(["same text"])
    closeness_holds(embedder)


def test_real_model_ranks_meaning() -> None:
    # CI installs the embed extra (scripts/test.sh), so this runs there
    if not model_installed():
        pytest.skip("the embed extra is not installed")
    embedder = load_embedder("auto")
    assert embedder.name == "minilm"
    closeness_holds(embedder)
    # meaning without shared words: the real model sees it, hashing cannot
    query, para, other = embedder.embed(["throttle traffic", "limit request rate", "cake"])
    assert cosine(query, para) > cosine(query, other)


def test_embedder_choice() -> None:
    assert load_embedder("hashing").name == "hashing"
    with pytest.raises(ConfigError, match="auto, minilm or hashing"):
        load_embedder("word2vec")


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


def test_chunks_of_a_git_repository(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q")
    (tmp_path / "api.py").write_text("\n".join(f"line {i}" for i in range(1, 96)) + "\n")
    (tmp_path / "logo.png").write_bytes(b"\x89PNG\0\0binary")
    (tmp_path / ".gitignore").write_text("build/\n")
    (tmp_path / "build").mkdir()
    (tmp_path / "build" / "out.txt").write_text("generated")
    chunks, files = chunk_repo(str(tmp_path))
    assert files == 2  # api.py and .gitignore; the binary and the ignored file are skipped
    api = [c for c in chunks if c.path == "api.py"]
    assert [(c.start, c.end) for c in api] == [(1, 40), (41, 80), (81, 95)]
    assert api[1].text.splitlines()[0] == "line 41"


def test_chunks_of_a_plain_folder_skip_hidden_and_vendored(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "main.go").write_text("package main\n")
    (tmp_path / "node_modules").mkdir()
    (tmp_path / "node_modules" / "x.js").write_text("x\n")
    (tmp_path / ".secret").write_text("no\n")
    chunks, files = chunk_repo(str(tmp_path))
    assert files == 1 and [c.path for c in chunks] == ["src/main.go"]


def test_the_simulated_change_applies_once(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q")
    commit = apply_diff(tmp_path, simulated_diff("apollo-ci"), "simulated")
    assert len(commit) == 40 and (tmp_path / SIMULATED_FILE).exists()
    with pytest.raises(DiffRefusedError, match="already exists"):
        apply_diff(tmp_path, simulated_diff("apollo-ci"), "again")
    with pytest.raises(DiffRefusedError, match="No valid patches"):
        apply_diff(tmp_path, "not a diff at all", "x")


def test_stage_prompt_carries_lessons_and_chunks() -> None:
    request = StageRequest(run_id="r2", stage="plan", goal="Add rate limiting", debate_id="d")
    bare, _ = stage_prompt(request, Recall())
    assert "Lessons" not in bare and bare.startswith("Goal: Add rate limiting")
    found = Recall(
        lessons=[Lesson("r1", "plan", "blocked", "Add rate limits", "blocked: no owner named")],
        chunks=[Chunk("api.py", 1, 3, "def limit(rate): ...")],
    )
    prompt, _ = stage_prompt(request, found)
    assert "- [r1 plan, blocked] blocked: no owner named" in prompt
    assert "--- api.py:1-3\ndef limit(rate): ..." in prompt


def test_public_uri_drops_credentials() -> None:
    assert public_uri("http://root:s3cret@db:19530") == "http://db:19530"
    assert public_uri("http://127.0.0.1:19530") == "http://127.0.0.1:19530"
