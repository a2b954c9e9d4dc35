"""One exception tree for all of Tekton.

    TektonError
    ├── ConfigError (+ ValueError)          bad settings or flags, found at start-up
    ├── NotFoundError (+ LookupError)       something named that does not exist
    │   ├── UnknownCIError                  a CI name that is not in the catalog
    │   └── UnknownSchemaError              an artifact schema name that is not registered
    ├── ProtocolError (+ ValueError)        a malformed message on the socket or the bus
    │   └── LineTooLongError                a socket line over the 1 MiB limit
    ├── TransportError (+ ConnectionError)  a server cannot be reached
    │   └── RequestTimeoutError (+ TimeoutError)
    ├── RemoteError                         a CI answered with an error reply
    ├── OverBudgetError                     a token or cost limit was reached
    ├── NotReadyError                       the service is starting or stopping
    ├── UnauthorizedError                   a request without the required credentials
    ├── ForbiddenError                      credentials that do not allow this request
    ├── PermissionDeniedError               NATS refused a subject to this process's user
    └── ProviderError                       the model provider failed

Each error carries the micro status code the bus answers with (`code`), so a handler
can turn any TektonError into `Nats-Service-Error-Code` without a lookup table.
"""

from __future__ import annotations


class TektonError(Exception):
    """Base of every error Tekton raises on purpose."""

    code: int = 500


class ConfigError(TektonError, ValueError):
    """A setting, flag or configuration file is invalid."""

    code = 400


class NotFoundError(TektonError, LookupError):
    """Something named in a request does not exist."""

    code = 404


class UnknownCIError(NotFoundError):
    """A CI name that is neither an id nor an alias in the catalog."""


class UnknownSchemaError(NotFoundError):
    """An artifact schema name that is not registered."""


class ProtocolError(TektonError, ValueError):
    """A message that does not follow the wire protocol."""

    code = 400


class ConflictError(TektonError):
    """The request contradicts what is already recorded (a gate decided otherwise, or
    another decision came first)."""

    code = 409


class LineTooLongError(ProtocolError):
    """A socket line longer than the protocol's limit."""


class TransportError(TektonError, ConnectionError):
    """A server (NATS, a CI socket) could not be reached."""

    code = 503


class RequestTimeoutError(TransportError, TimeoutError):
    """No reply arrived before the deadline."""

    code = 504


class RemoteError(TektonError):
    """A CI replied with an error; `code` is the code it sent."""

    def __init__(self, message: str, code: int = 500) -> None:
        super().__init__(message)
        self.code = code


class OverBudgetError(TektonError):
    """A token or cost budget is exhausted."""

    code = 429


class NotReadyError(TektonError):
    """The service is not ready to take this request."""

    code = 503


class ProviderError(TektonError):
    """The model provider failed to produce a reply."""

    code = 502


class UnauthorizedError(TektonError):
    """A request without the credentials the service requires."""

    code = 401


class ForbiddenError(TektonError):
    """Credentials that do not allow the request (a signed-in browser's cookie on a
    request that might have been forged by another site)."""

    code = 403


class PermissionDeniedError(TektonError):
    """NATS refused this process's user a subject: a deployment's permissions do not let
    it do its work, which no retry changes (a 500: the platform, not the request)."""

    code = 500
