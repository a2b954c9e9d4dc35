"""The CI registry: JetStream KV bucket ``tekton-registry``, with a file fallback.

One key per running instance (``<ci id>.<instance>``). When NATS cannot be reached the
same record is written atomically to ``$TEKTON_HOME/registry/<key>.json``; readers merge
both and keep the freshest heartbeat per key.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from pathlib import Path

import msgspec
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.js.kv import KeyValue

from tekton_common.bus import open_kv
from tekton_common.settings import Settings
from tekton_common.subjects import REGISTRY_BUCKET
from tekton_common.wire import RegistryRecord

log = logging.getLogger(__name__)
_NATS_FAILURES = (nats.errors.Error, OSError, TimeoutError)


def registry_dir(settings: Settings) -> Path:
    """Folder of the file-based fallback registry."""
    return settings.home_path / "registry"


def is_active(record: RegistryRecord, settings: Settings, now: float | None = None) -> bool:
    """True while the record's heartbeat is fresher than `stale_after`."""
    now = time.time() if now is None else now
    return record.status == "running" and now - record.last_heartbeat < settings.stale_after


async def open_bucket(nc: Client) -> KeyValue:
    """The registry bucket, created on first use."""
    return await open_kv(nc, REGISTRY_BUCKET, "running Tekton CI instances")


class Registry:
    """Writes one instance's record to KV, or to a file while NATS is unreachable."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.folder = registry_dir(settings)
        self.bucket: KeyValue | None = None

    async def attach(self, nc: Client) -> None:
        """Use the KV bucket from now on."""
        self.bucket = await open_bucket(nc)

    def _file(self, key: str) -> Path:
        return self.folder / f"{key}.json"

    def _write_file(self, record: RegistryRecord) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        target = self._file(record.key)
        tmp = target.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(msgspec.json.encode(record))
        os.replace(tmp, target)

    async def put(self, record: RegistryRecord) -> str:
        """Store the record; returns where it went (``kv`` or ``file``)."""
        if self.bucket is not None:
            try:
                await asyncio.wait_for(self.bucket.put(record.key, msgspec.json.encode(record)), 3)
            except _NATS_FAILURES as exc:
                log.warning("registry KV unavailable (%s); writing file fallback", exc)
            else:
                with contextlib.suppress(FileNotFoundError):
                    self._file(record.key).unlink()
                return "kv"
        self._write_file(record)
        return "file"

    async def delete(self, key: str) -> None:
        """Remove an instance from both the KV bucket and the fallback folder."""
        with contextlib.suppress(FileNotFoundError):
            self._file(key).unlink()
        if self.bucket is not None:
            try:
                await asyncio.wait_for(self.bucket.purge(key), 3)
            except _NATS_FAILURES as exc:
                log.warning("could not remove %s from registry KV: %s", key, exc)


def read_files(settings: Settings) -> list[RegistryRecord]:
    """Records in the file fallback (unreadable files are skipped)."""
    records = []
    for path in sorted(registry_dir(settings).glob("*.json")):
        try:
            records.append(msgspec.json.decode(path.read_bytes(), type=RegistryRecord))
        except (OSError, msgspec.DecodeError):
            log.warning("skipping unreadable registry file %s", path)
    return records


async def read_bucket(nc: Client) -> list[RegistryRecord]:
    """Records in the KV bucket."""
    bucket = await open_bucket(nc)
    try:
        keys = await bucket.keys()
    except nats.js.errors.NoKeysError:
        return []
    records = []
    for key in keys:
        try:
            entry = await bucket.get(key)
        except nats.js.errors.KeyNotFoundError:
            continue
        if entry.value:
            records.append(msgspec.json.decode(entry.value, type=RegistryRecord))
    return records


async def read_registry(settings: Settings, nc: Client | None) -> list[RegistryRecord]:
    """Every known instance: KV (when reachable) merged with the file fallback."""
    merged = {r.key: r for r in read_files(settings)}
    if nc is not None and nc.is_connected:
        try:
            for record in await read_bucket(nc):
                old = merged.get(record.key)
                if old is None or record.last_heartbeat >= old.last_heartbeat:
                    merged[record.key] = record
        except _NATS_FAILURES as exc:
            log.warning("registry KV unreadable: %s", exc)
    return sorted(merged.values(), key=lambda r: (r.ci, r.instance))


async def remove_ci(settings: Settings, nc: Client | None, ci: str) -> int:
    """Deregister every instance of one CI; returns how many records were removed."""
    registry = Registry(settings)
    if nc is not None and nc.is_connected:
        with contextlib.suppress(*_NATS_FAILURES):
            await registry.attach(nc)
    removed = 0
    for record in await read_registry(settings, nc):
        if record.ci == ci:
            await registry.delete(record.key)
            removed += 1
    return removed
