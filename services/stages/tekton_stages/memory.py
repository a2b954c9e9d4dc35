"""Retrieval memory in Milvus: lessons from earlier runs and chunks of `--repo` files.

Two collections per embedder (``tekton_lessons_<embedder>``, ``tekton_repo_<embedder>``),
cosine similarity over 384-dim vectors. pymilvus's client is synchronous here (Milvus
Lite does not implement the async client's collection creation), so every call runs in
a worker thread. Any Milvus failure becomes `MemoryUnavailableError`: callers go on without
memory and say so.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from pymilvus import DataType, MilvusClient
from pymilvus.exceptions import MilvusException

from tekton_common.contract.ids import check_id
from tekton_common.contract.platform import MemoryInfo
from tekton_common.contract.runs import Chunk, Lesson
from tekton_common.errors import TransportError
from tekton_stages.embeddings import Embedder, load_embedder

log = logging.getLogger(__name__)
logging.getLogger("pymilvus").setLevel(logging.CRITICAL)  # its failures reach us as errors
T = TypeVar("T")
TEXT_BYTES = 6000  # stored text is cut to this many UTF-8 bytes


class MemoryUnavailableError(TransportError):
    """Milvus could not be reached or refused the operation."""


def key(value: str) -> str:
    """A filter-safe key for any string (run ids and paths are never quoted into filters)."""
    return hashlib.sha256(value.encode()).hexdigest()[:32]


def cut(text: str) -> str:
    """`text` cut to what a VARCHAR field holds."""
    return text.encode()[:TEXT_BYTES].decode(errors="ignore")


def public_uri(uri: str) -> str:
    """The URI without user and password, for status and logs."""
    parts = urlsplit(uri)
    if parts.password is None and parts.username is None:
        return uri
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit(parts._replace(netloc=netloc))


def _fields(dim: int, extra: list[tuple[str, int]]) -> Any:
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=64)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
    for name, length in extra:
        if length:
            schema.add_field(name, DataType.VARCHAR, max_length=length)
        else:
            schema.add_field(name, DataType.INT64)
    return schema


LESSON_FIELDS = [
    ("run_key", 64),
    ("run_id", 128),
    ("stage", 32),
    ("status", 16),
    ("goal", TEXT_BYTES),
    ("text", TEXT_BYTES),
]
CHUNK_FIELDS = [("repo_key", 64), ("path", 1024), ("start", 0), ("end", 0), ("text", TEXT_BYTES)]


class Memory:
    """Lessons and repository chunks; the embedder loads in the background."""

    def __init__(self, uri: str, embedder: str, timeout: float = 10.0) -> None:
        self.uri = uri
        self.timeout = timeout
        self.choice = embedder
        self._embedder: asyncio.Future[Embedder] | None = None
        self._client: MilvusClient | None = None
        self._ready: set[str] = set()
        self._last_query: tuple[str, list[float]] | None = None
        self._embedding = ThreadPoolExecutor(max_workers=1, thread_name_prefix="embed")

    def start(self) -> None:
        """Begin loading the embedder (the real model takes seconds) on a daemon thread:
        a service stopped meanwhile exits at once instead of waiting for torch."""
        if self._embedder is not None:
            return
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Embedder] = loop.create_future()

        def settle(result: Embedder | None, error: BaseException | None) -> None:
            if future.done():
                return
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(result)  # type: ignore[arg-type]

        def load() -> None:
            try:
                outcome: tuple[Embedder | None, BaseException | None] = (
                    load_embedder(self.choice),
                    None,
                )
            except BaseException as exc:  # handed to whoever awaits the embedder
                outcome = (None, exc)
            with contextlib.suppress(RuntimeError):  # the service stopped meanwhile
                loop.call_soon_threadsafe(settle, *outcome)

        threading.Thread(target=load, name="embedder", daemon=True).start()
        self._embedder = future

    async def embedder(self) -> Embedder:
        """The loaded embedder."""
        self.start()
        assert self._embedder is not None
        return await self._embedder

    async def _embed(self, texts: list[str]) -> list[list[float]]:
        embedder = await self.embedder()
        # embeddings take the CPU for a while: on a thread of their own, so Milvus calls
        # (and `tekton status`) never queue behind a burst of them
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._embedding, embedder.embed, texts)

    async def _names(self) -> tuple[str, str]:
        name = (await self.embedder()).name
        return f"tekton_lessons_{name}", f"tekton_repo_{name}"

    def _connect(self) -> MilvusClient:
        if self._client is None:
            self._client = MilvusClient(uri=self.uri, timeout=self.timeout)
            self._ready.clear()
        return self._client

    def _drop(self) -> None:
        """Close the connection: pymilvus shares channels per URI, and a channel that
        failed waits out gRPC's reconnect backoff; a closed one is made anew."""
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()

    async def _call(self, fn: Callable[[MilvusClient], T]) -> T:
        """Run `fn` with the client in a worker thread; one retry on a fresh connection
        (pymilvus recovers a broken channel only on the call after the failure)."""

        def work() -> T:
            return fn(self._connect())

        try:
            return await asyncio.to_thread(work)
        except (MilvusException, OSError, RuntimeError):
            await asyncio.to_thread(self._drop)
        try:
            return await asyncio.to_thread(work)
        except (MilvusException, OSError, RuntimeError) as exc:
            await asyncio.to_thread(self._drop)
            error = MemoryUnavailableError(f"Milvus at {public_uri(self.uri)}: {exc}")
            log.warning("%s", error)
            raise error from None

    async def _collection(self, name: str, extra: list[tuple[str, int]]) -> str:
        dim = (await self.embedder()).dim

        def ensure(client: MilvusClient) -> None:
            if name in self._ready:
                return
            if not client.has_collection(name):
                index = client.prepare_index_params()
                index.add_index(field_name="vector", index_type="FLAT", metric_type="COSINE")
                client.create_collection(name, schema=_fields(dim, extra), index_params=index)
            client.load_collection(name)
            self._ready.add(name)

        await self._call(ensure)
        return name

    async def remember(self, lesson: Lesson) -> None:
        """Store (or replace) the lesson of one stage of one run."""
        name = await self._collection((await self._names())[0], LESSON_FIELDS)
        [vector] = await self._embed([f"{lesson.goal}\n{lesson.text}"])
        row = {
            "id": key(f"{lesson.run_id}\0{lesson.stage}"),
            "vector": vector,
            "run_key": key(lesson.run_id),
            "run_id": lesson.run_id[:128],
            "stage": lesson.stage,
            "status": lesson.status,
            "goal": cut(lesson.goal),
            "text": cut(lesson.text),
        }
        await self._call(lambda c: c.upsert(name, [row]))

    async def _search(
        self, name: str, query: str, limit: int, where: str, fields: list[str]
    ) -> list[dict[str, Any]]:
        """The rows of `name` closest to `query` (their fields plus `score`). A stage asks
        for lessons and chunks with the same query: it is embedded once."""
        if self._last_query is None or self._last_query[0] != query:
            [vector] = await self._embed([query])
            self._last_query = (query, vector)
        vector = self._last_query[1]
        found = await self._call(
            lambda c: c.search(name, data=[vector], limit=limit, filter=where, output_fields=fields)
        )
        return [{**hit["entity"], "score": round(float(hit["distance"]), 4)} for hit in found[0]]

    async def recall(
        self, query: str, stage: str, exclude_run: str, limit: int = 3
    ) -> list[Lesson]:
        """The lessons of other runs' `stage` closest to `query`."""
        name = await self._collection((await self._names())[0], LESSON_FIELDS)
        where = f'stage == "{stage}" and run_key != "{key(exclude_run)}"'
        fields = ["run_id", "stage", "status", "goal", "text"]
        return [Lesson(**row) for row in await self._search(name, query, limit, where, fields)]

    async def search(self, query: str, stage: str | None, limit: int) -> list[dict[str, Any]]:
        """The lessons of any run closest to `query` (of one stage, if named), with
        their score."""
        name = await self._collection((await self._names())[0], LESSON_FIELDS)
        where = f'stage == "{check_id("stage", stage)}"' if stage else ""
        fields = ["run_id", "stage", "status", "goal", "text"]
        return await self._search(name, query, limit, where, fields)

    async def lessons(self, run_id: str) -> list[Lesson]:
        """Every lesson of one run (an export carries them; a prune counts them)."""
        name = await self._collection((await self._names())[0], LESSON_FIELDS)
        where = f'run_key == "{key(run_id)}"'
        fields = ["run_id", "stage", "status", "goal", "text"]
        found = await self._call(lambda c: c.query(name, filter=where, output_fields=fields))
        return [Lesson(**{f: row[f] for f in fields}) for row in found]

    async def forget(self, run_ids: list[str]) -> None:
        """Remove the lessons of these runs."""
        name = await self._collection((await self._names())[0], LESSON_FIELDS)
        keys = ", ".join(f'"{key(run_id)}"' for run_id in run_ids)
        await self._call(lambda c: c.delete(name, filter=f"run_key in [{keys}]"))

    async def index_repo(self, repo: str, chunks: list[Chunk]) -> int:
        """Replace the repository's chunks with `chunks`; returns how many were stored."""
        name = await self._collection((await self._names())[1], CHUNK_FIELDS)
        repo_key = key(repo)
        await self._call(lambda c: c.delete(name, filter=f'repo_key == "{repo_key}"'))
        for begin in range(0, len(chunks), 64):
            batch = chunks[begin : begin + 64]
            vectors = await self._embed([f"{c.path}\n{c.text}" for c in batch])
            rows = [
                {
                    "id": key(f"{repo}\0{c.path}\0{c.start}"),
                    "vector": vector,
                    "repo_key": repo_key,
                    "path": c.path[:1024],
                    "start": c.start,
                    "end": c.end,
                    "text": cut(c.text),
                }
                for c, vector in zip(batch, vectors, strict=True)
            ]
            await self._call(lambda c, rows=rows: c.upsert(name, rows))  # type: ignore[misc]
        return len(chunks)

    async def search_repo(self, repo: str, query: str, limit: int = 4) -> list[Chunk]:
        """The repository chunks closest to `query`."""
        name = await self._collection((await self._names())[1], CHUNK_FIELDS)
        where = f'repo_key == "{key(repo)}"'
        fields = ["path", "start", "end", "text"]
        return [Chunk(**row) for row in await self._search(name, query, limit, where, fields)]

    async def info(self) -> MemoryInfo:
        """Embedder, URI, reachability and collection sizes, for `tekton status`."""
        self.start()
        assert self._embedder is not None
        uri = public_uri(self.uri)
        if not self._embedder.done():
            return MemoryInfo(
                reachable=False,
                embedder=f"{self.choice} (loading)",
                embedder_description="the stages service is loading the embedder",
                milvus_uri=uri,
                error="embedder still loading",
            )
        embedder = await self.embedder()
        try:
            counts = {}
            for label, (name, extra) in zip(
                ("lessons", "chunks"),
                zip(await self._names(), (LESSON_FIELDS, CHUNK_FIELDS), strict=True),
                strict=True,
            ):
                await self._collection(name, extra)
                stats = await self._call(lambda c, n=name: c.get_collection_stats(n))  # type: ignore[misc]
                counts[label] = int(stats["row_count"])
        except MemoryUnavailableError as exc:
            return MemoryInfo(
                reachable=False,
                embedder=embedder.name,
                embedder_description=embedder.description,
                milvus_uri=uri,
                error=str(exc),
            )
        return MemoryInfo(
            reachable=True,
            embedder=embedder.name,
            embedder_description=embedder.description,
            milvus_uri=uri,
            lessons=counts["lessons"],
            chunks=counts["chunks"],
        )
