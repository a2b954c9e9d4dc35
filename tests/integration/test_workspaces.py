"""Workspaces through a real nats-server's object store: packed on one side (a git
repository with uncommitted work, a plain folder), made real on the other in a scratch
folder of its own, diffs applied (hostile ones refused), the result fetched back."""

from __future__ import annotations

import os
import subprocess
import tarfile
from collections.abc import AsyncIterator
from pathlib import Path

import nats
import pytest

from tekton_common.contract.workspaces import WorkspaceRef
from tekton_common.errors import ConfigError, NotFoundError, ProtocolError
from tekton_common.workspace import IDENTITY, download, pack, upload
from tekton_stages.worktrees import DiffRefusedError, Worktrees, apply_diff, refusal

FIX = """\
diff --git a/calc.py b/calc.py
--- a/calc.py
+++ b/calc.py
@@ -1,2 +1,2 @@
 def add(a, b):
-    return a - b
+    return a + b
"""


def sh(cwd: Path, *args: str, input_text: str | None = None) -> str:
    env = {**IDENTITY, "PATH": "/usr/bin:/bin", "HOME": str(cwd)}
    done = subprocess.run(
        args, cwd=cwd, capture_output=True, text=True, env=env, check=True, input=input_text
    )
    return done.stdout.strip()


def make_repo(root: Path) -> Path:
    repo = root / "project"
    repo.mkdir()
    (repo / "calc.py").write_text("def add(a, b):\n    return a - b\n")
    (repo / ".gitignore").write_text("build/\n")
    sh(repo, "git", "init", "-q", "-b", "main")
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-q", "-m", "first")
    return repo


@pytest.fixture
async def js(nats_server) -> AsyncIterator:
    nc = await nats.connect(nats_server.url)
    yield nc.jetstream()
    await nc.close()


async def test_git_workspace_carries_uncommitted_work_and_leaves_ignored_out(
    tmp_path: Path, js
) -> None:
    repo = make_repo(tmp_path)
    (repo / "notes.md").write_text("untracked but not ignored\n")
    (repo / "calc.py").write_text("def add(a, b):\n    return a - b  # edited\n")
    (repo / "build").mkdir()
    (repo / "build" / "big.bin").write_bytes(b"x" * 1000)
    refs_before = sh(repo, "git", "for-each-ref")
    packed = tmp_path / "ws.bundle"
    assert pack(repo, packed, 10**7) == "git"
    assert sh(repo, "git", "for-each-ref") == refs_before  # the user's refs untouched
    ref = await upload(js, "run1/source", packed, "git", str(repo))
    assert ref.size == packed.stat().st_size and ref.digest.startswith("SHA-256=")

    # the stages side: its own scratch folder, nothing read from the repository's path
    trees = Worktrees(js, tmp_path / "scratch")
    worktree = await trees.checkout(ref, "run1", "attempt-1")
    assert (worktree / "notes.md").read_text() == "untracked but not ignored\n"
    assert "# edited" in (worktree / "calc.py").read_text()
    assert not (worktree / "build").exists()
    again = await trees.checkout(ref, "run1", "attempt-2")  # a fresh worktree per attempt
    assert again != worktree and (again / "calc.py").exists()


async def test_plain_folder_result_branch_and_fetch_back(tmp_path: Path, js) -> None:
    repo = make_repo(tmp_path)
    packed = tmp_path / "ws.bundle"
    ref = await upload(js, "run2/source", packed, pack(repo, packed, 10**7), "p")
    trees = Worktrees(js, tmp_path / "scratch")
    worktree = await trees.checkout(ref, "run2", "attempt-1")
    commit = apply_diff(worktree, FIX, "tekton: fix add")
    result = await trees.keep_result(ref, "run2", commit, "Fix add\n\nfrom the release report")
    assert result.name == "run2/result"

    # the command line fetches the branch bundle into the user's repository
    bundle = tmp_path / "result.bundle"
    await download(js, result.name, bundle)
    sh(repo, "git", "fetch", "-q", str(bundle), "refs/heads/tekton/run2:refs/heads/tekton/run2")
    assert sh(repo, "git", "log", "--format=%s", "-1", "tekton/run2") == "Fix add"
    assert sh(repo, "git", "rev-list", "--count", "main..tekton/run2") == "1"
    assert "return a + b" in sh(repo, "git", "show", "tekton/run2:calc.py")

    folder = tmp_path / "plain"
    folder.mkdir()
    (folder / "a.txt").write_text("hello\n")
    (folder / "node_modules").mkdir()
    (folder / "node_modules" / "dep.js").write_text("x")
    archive = tmp_path / "plain.tgz"
    assert pack(folder, archive, 10**7) == "tree"
    tree_ref = await upload(js, "run3/source", archive, "tree", "plain")
    plain = await trees.checkout(tree_ref, "run3", "attempt-1")
    assert (plain / "a.txt").read_text() == "hello\n" and not (plain / "node_modules").exists()


@pytest.mark.parametrize(
    ("diff", "reason"),
    [
        ("--- a/../evil.py\n+++ b/../evil.py\n@@ -0,0 +1 @@\n+x\n", "leaves the repository"),
        ("--- /dev/null\n+++ b//etc/passwd\n@@ -0,0 +1 @@\n+x\n", "leaves the repository"),
        (
            "diff --git a/.git/hooks/pre-commit b/.git/hooks/pre-commit\n"
            "--- /dev/null\n+++ b/.git/hooks/pre-commit\n@@ -0,0 +1 @@\n+x\n",
            "writes into .git",
        ),
        (
            "diff --git a/link b/link\nnew file mode 120000\n--- /dev/null\n+++ b/link\n"
            "@@ -0,0 +1 @@\n+/etc\n\\ No newline at end of file\n",
            "symlinks",
        ),
        (
            "diff --git a/x.bin b/x.bin\nnew file mode 100644\nGIT binary patch\nliteral 1\n",
            "binary",
        ),
    ],
)
def test_hostile_diffs_are_refused_with_the_reason(tmp_path: Path, diff: str, reason: str) -> None:
    assert reason in (refusal(diff) or "")
    repo = make_repo(tmp_path)
    with pytest.raises(DiffRefusedError, match=reason):
        apply_diff(repo, diff, "x")
    assert not (tmp_path / "evil.py").exists()
    assert sh(repo, "git", "status", "--porcelain") == ""


def test_a_diff_that_does_not_apply_says_why(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    with pytest.raises(DiffRefusedError, match="does not apply"):
        apply_diff(repo, FIX.replace("a - b", "a * b"), "x")


async def test_too_large_and_missing(tmp_path: Path, js) -> None:
    repo = make_repo(tmp_path)
    (repo / "data.txt").write_bytes(os.urandom(50_000))  # incompressible
    sh(repo, "git", "add", "data.txt")
    with pytest.raises(ConfigError, match="workspace limit"):
        pack(repo, tmp_path / "x.bundle", 10_000)
    with pytest.raises(ConfigError, match="not a folder"):
        pack(tmp_path / "nope", tmp_path / "y", 10**7)
    missing = WorkspaceRef(name="gone/source", kind="git", size=1)
    with pytest.raises(NotFoundError, match="no workspace object gone/source"):
        await Worktrees(js, tmp_path / "s").checkout(missing, "r", "attempt-1")


async def test_a_hostile_archive_runs_nothing_here(tmp_path: Path, js) -> None:
    # an archive that carries a .git folder: its config and hooks would run on this host
    folder = tmp_path / "evil"
    (folder / ".git" / "hooks").mkdir(parents=True)
    marker = tmp_path / "PWNED"
    (folder / ".git" / "config").write_text(f'[core]\n\tfsmonitor = "touch {marker}"\n')
    (folder / "a.txt").write_text("x\n")
    archive = tmp_path / "evil.tgz"
    with tarfile.open(archive, "w:gz") as packed:
        packed.add(folder, arcname=".")
    ref = await upload(js, "evil/source", archive, "tree", "evil")
    with pytest.raises(ProtocolError, match=r"\.git"):
        await Worktrees(js, tmp_path / "scratch").checkout(ref, "evil", "attempt-1")
    assert not marker.exists()


async def test_a_bundle_of_any_branch_is_a_workspace(tmp_path: Path, js) -> None:
    repo = make_repo(tmp_path)
    bundle = tmp_path / "all.bundle"
    sh(repo, "git", "bundle", "create", "-q", str(bundle), "--all")  # what the API docs say
    ref = await upload(js, "any/source", bundle, "git", "upload")
    worktree = await Worktrees(js, tmp_path / "scratch").checkout(ref, "any", "attempt-1")
    assert (worktree / "calc.py").exists()


def test_a_symlink_made_by_an_index_line_is_refused(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    (repo / "link").symlink_to("calc.py")
    sh(repo, "git", "add", "link")
    sh(repo, "git", "commit", "-q", "-m", "a link")
    target = sh(repo, "git", "hash-object", "-w", "--stdin", input_text="/etc/passwd")
    current = sh(repo, "git", "rev-parse", "HEAD:link")
    retarget = (
        f"diff --git a/link b/link\nindex {current[:7]}..{target[:7]} 120000\n--- a/link\n"
        "+++ b/link\n@@ -1 +1 @@\n-calc.py\n\\ No newline at end of file\n+/etc/passwd\n"
        "\\ No newline at end of file\n"
    )
    assert refusal(retarget) is None  # no mode line: only the applied result shows it
    with pytest.raises(DiffRefusedError, match="symlinks"):
        apply_diff(repo, retarget, "x")
    assert (repo / "link").readlink() == Path("calc.py")
