"""Clients of the platform.

- `Tekton` (`platform`): what the command line, the API, the benchmarks and the tests
  ask of the platform, over NATS, in typed messages;
- `BusClient` and `error_of` (`bus`): CIs over NATS, and the one reader of micro error
  headers;
- `ai_send`, `ai_send_sync`, `SocketClient` (`socket`): a CI's socket port, with the
  seed's signature kept.
"""

from tekton_common.client.bus import BusClient, error_of, raise_for_error
from tekton_common.client.platform import Tekton
from tekton_common.client.socket import SocketClient, ai_send, ai_send_sync, ci_address

__all__ = [
    "BusClient",
    "SocketClient",
    "Tekton",
    "ai_send",
    "ai_send_sync",
    "ci_address",
    "error_of",
    "raise_for_error",
]
