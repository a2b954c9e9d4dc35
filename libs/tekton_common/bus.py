"""NATS connection helper: uvloop, reconnect forever with capped backoff, drain on stop."""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import nats
import nats.js.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.api import DeliverPolicy, StreamConfig
from nats.js.client import JetStreamContext
from nats.js.kv import KeyValue
from opentelemetry.trace import SpanKind

from tekton_common import spans, telemetry
from tekton_common.errors import ConfigError, PermissionDeniedError, TransportError
from tekton_common.secrets import read_secret
from tekton_common.settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")

BACKOFF_BASE = 0.25
BACKOFF_CAP = 5.0


class TracedClient(Client):
    """A NATS client that carries the current trace context in every message's headers
    and wraps each request in a ``send {subject}`` span (only inside a trace).

    `replicas` is how many copies JetStream keeps of the streams and KV buckets Tekton
    creates through this connection (the ``stream_replicas`` setting: 3 on a cluster).
    """

    replicas: int = 1

    def __init__(self) -> None:
        super().__init__()
        #: permission violations the server reported: (monotonic time, message)
        self.refusals: deque[tuple[float, str]] = deque(maxlen=32)

    def refusal(self, subject: str, since: float) -> str | None:
        """The server's refusal of `subject` reported since `since` (monotonic), if any:
        a publish the connection's user may not make is refused asynchronously, and the
        request it belonged to only times out."""
        quoted = f'"{subject}"'
        return next((text for at, text in self.refusals if at >= since and quoted in text), None)

    async def publish(
        self,
        subject: str,
        payload: bytes = b"",
        reply: str = "",
        headers: dict[str, str] | None = None,
    ) -> None:
        if not subject.startswith("_INBOX.") and spans.hop_spans(subject):  # replies carry none
            headers = telemetry.inject(headers)
        await super().publish(subject, payload, reply, headers)

    async def request(
        self,
        subject: str,
        payload: bytes = b"",
        timeout: float = 0.5,
        old_style: bool = False,
        headers: dict[str, Any] | None = None,
    ) -> Msg:
        if not spans.hop_spans(subject):
            return await super().request(subject, payload, timeout, old_style, headers)
        attributes = spans.messaging(subject, "send")
        with spans.span(f"send {subject}", attributes, SpanKind.CLIENT) as current:
            reply = await super().request(subject, payload, timeout, old_style, headers)
            if error := (reply.headers or {}).get("Nats-Service-Error"):  # see client.error_of
                spans.fail(current, error)
            return reply


def backoff_delay(attempt: int) -> float:
    """Exponential backoff with full jitter, capped at BACKOFF_CAP seconds."""
    ceiling: float = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** min(attempt, 16))
    return random.uniform(ceiling / 2, ceiling)


def _pick_server(servers: list[Any], _info: dict[str, Any]) -> tuple[Any, float]:
    # nats-py asks us which server to try next and how long to wait first.
    server = min(servers, key=lambda s: s.reconnects)
    return server, backoff_delay(server.reconnects)


def security_options(settings: Settings) -> dict[str, Any]:
    """Credentials and TLS for the NATS connection: a token (TEKTON_NATS_TOKEN), a user
    and password (nats_user, TEKTON_NATS_PASSWORD), an nkey seed file, and TLS with a CA
    and optionally a client certificate. Secrets come from the environment or a secret
    file, never from settings."""
    options: dict[str, Any] = {}
    token = read_secret("TEKTON_NATS_TOKEN")
    if token:
        options["token"] = token
    if settings.nats_user:
        options["user"] = settings.nats_user
        options["password"] = read_secret("TEKTON_NATS_PASSWORD") or ""
        # replies to this user's requests come to its own inboxes, which least-privilege
        # permissions (tekton deploy render: nats/auth.conf) let only this user read
        options["inbox_prefix"] = f"_INBOX.{settings.nats_user}"
    if settings.nats_nkey_seed_file:
        if not Path(settings.nats_nkey_seed_file).is_file():
            raise ConfigError(f"nats_nkey_seed_file {settings.nats_nkey_seed_file}: no such file")
        options["nkeys_seed"] = settings.nats_nkey_seed_file
    if settings.nats_tls_ca or settings.nats_tls_cert:
        try:
            context = ssl.create_default_context(cafile=settings.nats_tls_ca)
            if settings.nats_tls_cert:
                context.load_cert_chain(settings.nats_tls_cert, settings.nats_tls_key)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"NATS TLS files: {exc}") from None
        options["tls"] = context
    return options


async def _listening(urls: str) -> bool:
    """True when the first NATS server of `urls` accepts TCP connections."""
    parts = urlsplit(urls.split(",", maxsplit=1)[0].strip())
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(parts.hostname or "127.0.0.1", parts.port or 4222), 2
        )
    except (OSError, TimeoutError):
        return False
    writer.close()
    return True


def _refused(exc: Exception) -> bool:
    return "authorization" in str(exc).lower() or isinstance(exc, ssl.SSLError)


async def connect(
    settings: Settings,
    name: str,
    *,
    retry_forever: bool = False,
    on_reconnect: Callable[[], Awaitable[None]] | None = None,
    on_disconnect: Callable[[], Awaitable[None]] | None = None,
) -> Client:
    """Connect to the settings' NATS URL.

    With `retry_forever` the first connection is retried with backoff until it
    succeeds (services); without it an unreachable server raises TransportError at
    once (command-line tools). Once connected, reconnection never gives up.
    """

    seen: list[Exception] = []  # nats-py reports a refusal here, then "no servers"

    async def _error(exc: Exception) -> None:
        seen.append(exc)
        if "permissions violation" in str(exc).lower():
            nc.refusals.append((time.monotonic(), str(exc)))
            log.error("NATS refused: %s", exc)
        else:
            log.debug("nats error: %s", exc)

    async def _noop() -> None:
        return None

    security = security_options(settings)
    attempt = 0
    while True:
        try:
            # nats-py retries a failed *first* connection as often as it would
            # reconnect (forever, when unlimited), hiding the error; so the first
            # connection gets one quick retry, and unlimited reconnects (with our
            # backoff) are switched on once connected.
            nc = TracedClient()
            nc.replicas = settings.stream_replicas
            await nc.connect(
                [url.strip() for url in settings.bus_url.split(",")],
                name=name,
                connect_timeout=2,
                allow_reconnect=True,
                max_reconnect_attempts=1,
                reconnect_time_wait=0.05,  # type: ignore[arg-type]
                reconnect_to_server_handler=_pick_server,
                error_cb=_error,
                reconnected_cb=on_reconnect or _noop,
                disconnected_cb=on_disconnect or _noop,
                **security,
            )
            nc.options["max_reconnect_attempts"] = -1
            nc.options["reconnect_time_wait"] = 1
            return nc
        except (OSError, TimeoutError, nats.errors.Error) as exc:
            refusal = next((e for e in (exc, *seen) if _refused(e)), None)
            if refusal is None and "tls" in security and await _listening(settings.bus_url):
                # the server is there, yet no TLS session came of it: the handshake was
                # refused (the alert may be lost when the server closes at once)
                refusal = ssl.SSLError(f"TLS handshake failed ({exc or type(exc).__name__})")
            if refusal is not None:  # wrong credentials do not get better by retrying
                raise ConfigError(
                    f"NATS at {settings.bus_url} refused the connection: "
                    f"{refusal or type(refusal).__name__} (check the NATS credentials and TLS "
                    "settings)"
                ) from None
            if not retry_forever:
                raise TransportError(
                    f"cannot reach NATS at {settings.bus_url}: {exc or type(exc).__name__}"
                    " (is the platform up? try `tekton up`)"
                ) from exc
            delay = backoff_delay(attempt)
            attempt += 1
            log.warning("NATS at %s unreachable, retrying in %.1fs", settings.bus_url, delay)
            await asyncio.sleep(delay)


async def close(nc: Client, timeout: float = 5.0) -> None:
    """Drain a connection (finish in-flight handlers), then close it."""
    if nc.is_closed:
        return
    if nc.is_connected:
        try:
            await asyncio.wait_for(nc.drain(), timeout)
            return
        except (TimeoutError, nats.errors.Error, OSError) as exc:
            log.warning("drain failed (%s); closing", exc)
    try:
        await nc.close()
    except (RuntimeError, OSError, nats.errors.Error) as exc:
        # closing while reconnecting can trip over the dead transport; it is gone anyway
        log.debug("close while disconnected: %s", exc)


async def patiently(
    call: Callable[[], Awaitable[T]],
    what: str,
    patience: float = 30.0,
    *,
    nc: Client | None = None,
    subject: str | None = None,
) -> T:
    """`call()`, asked again while JetStream cannot answer (no responders, a timeout, a
    cluster electing a new leader) for up to `patience` seconds.

    Only errors that can pass are retried: with `nc` and `subject`, a permission
    violation the server reported for `subject` ends the loop at once
    (PermissionDeniedError), and so does every error not listed below."""
    deadline = asyncio.get_running_loop().time() + patience
    since = time.monotonic()
    attempt = 0
    while True:
        try:
            return await call()
        except (
            nats.errors.TimeoutError,
            nats.errors.NoRespondersError,
            nats.errors.ConnectionClosedError,
            nats.errors.ConnectionReconnectingError,
            nats.js.errors.NoStreamResponseError,  # a stream without a leader, for now
        ) as exc:
            error: Exception = exc
        except nats.js.errors.APIError as exc:
            if exc.code not in (None, 503):
                raise
            error = exc
        if isinstance(nc, TracedClient) and subject and (why := nc.refusal(subject, since)):
            raise PermissionDeniedError(f"{what}: {why}") from error
        if asyncio.get_running_loop().time() > deadline:
            raise TransportError(f"{what}: JetStream did not answer ({error!r})") from error
        log.info("%s: JetStream busy (%r); asking again", what, error)
        await asyncio.sleep(backoff_delay(attempt))
        attempt += 1


async def while_unanswered(
    call: Callable[[], Awaitable[T]], patience: float, first_delay: float = 0.1
) -> T:
    """`call()`, asked again while nothing serves its subject (NoRespondersError: a CI
    restarting, endpoints still being registered, a reconnect after a NATS restart) for
    up to `patience` seconds, with a growing pause (at most 1 s); then the error stands.
    The one "nobody answers yet" loop."""
    end = time.monotonic() + patience
    delay = first_delay
    while True:
        try:
            return await call()
        except nats.errors.NoRespondersError:
            if time.monotonic() + delay > end:
                raise
        await asyncio.sleep(delay)
        delay = min(1.0, delay * 2)


#: JetStream's error code for a stream that exists with another configuration
STREAM_CONFIG_DIFFERS = 10058


def replicas(nc: Client) -> int:
    """Copies JetStream keeps of what Tekton creates (see `TracedClient.replicas`)."""
    return nc.replicas if isinstance(nc, TracedClient) else 1


async def keep_stream(js: JetStreamContext, config: StreamConfig, update: bool = False) -> None:
    """Create the stream; one made before with another configuration is brought to
    `config` when `update` (the one process allowed to: a retention setting changed),
    else used as it is. Idempotent across processes."""
    try:
        await js.add_stream(config)
    except nats.js.errors.BadRequestError as exc:
        if exc.err_code != STREAM_CONFIG_DIFFERS:
            raise
        if update:
            await js.update_stream(config)


async def open_kv(nc: Client, bucket: str, description: str) -> KeyValue:
    """A JetStream KV bucket, created on first use (idempotent across processes)."""
    js = nc.jetstream(timeout=3)
    try:
        return await js.key_value(bucket)
    except nats.js.errors.BucketNotFoundError:
        return await js.create_key_value(
            bucket=bucket, history=1, description=description, replicas=replicas(nc)
        )


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine on uvloop when it is installed, else on asyncio's loop."""
    try:
        import uvloop  # noqa: PLC0415 - optional speed-up, imported only where a loop starts
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


async def stored(
    js: JetStreamContext, subject: str, idle: float, last_seq: int | None = None
) -> AsyncIterator[Msg]:
    """What a stream holds on `subject`, oldest first: up to stream sequence `last_seq`
    (else until nothing is pending), or until none comes for `idle` seconds."""
    sub = await js.subscribe(subject, ordered_consumer=True, deliver_policy=DeliverPolicy.ALL)
    try:
        while True:
            try:
                msg = await sub.next_msg(timeout=idle)
            except nats.errors.TimeoutError:
                return
            yield msg
            meta = msg.metadata
            if meta.sequence.stream >= last_seq if last_seq is not None else not meta.num_pending:
                return
    finally:
        await sub.unsubscribe()
