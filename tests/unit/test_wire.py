from __future__ import annotations

import msgspec
import pytest

from tekton_common.errors import LineTooLongError, ProtocolError
from tekton_common.socket_server import LineSplitter
from tekton_common.wire import Response, Usage, bus_chat_request, decode_object, encode


def test_plain_text_bus_request_is_content() -> None:
    assert bus_chat_request(b"hello").text == "hello"


def test_json_bus_request_and_legacy_message_field() -> None:
    assert bus_chat_request(b'{"content": "a", "max_tokens": 5}').max_tokens == 5
    assert bus_chat_request(b'{"message": "old"}').text == "old"


@pytest.mark.parametrize(
    "payload", [b"", b"   ", b"\xff\xfe", b'{"content": 5}', b"{bad", b'{"history": [{"role": 1}]}']
)
def test_bad_bus_requests_raise_protocol_error(payload: bytes) -> None:
    with pytest.raises(ProtocolError):
        bus_chat_request(payload)


def test_decode_object_rejects_non_objects() -> None:
    with pytest.raises(ProtocolError, match="expected a JSON object"):
        decode_object(b"[1, 2]")


def test_replies_always_carry_their_type() -> None:
    data = msgspec.json.decode(
        encode(Response(ai_id="a", content="c", model="m", usage=Usage(), latency=0.1))
    )
    assert data["type"] == "response" and "request_id" not in data


def test_line_splitter_skips_oversized_lines_and_keeps_going() -> None:
    big = b"x" * 300_000
    splitter = LineSplitter(100_000)
    got: list[object] = []
    # fed in uneven pieces, as TCP delivers them
    data = b"one\n" + big + b"\ntwo\n\n" + big + b"tail\nthree"
    for start in range(0, len(data), 65_536):
        got += splitter.feed(data[start : start + 65_536])
    kinds = [g if isinstance(g, bytes) else type(g) for g in got]
    assert kinds == [b"one", LineTooLongError, b"two", LineTooLongError]
    assert splitter.feed(b"\n") == [b"three"]


def test_line_splitter_line_exactly_at_limit() -> None:
    splitter = LineSplitter(10)
    assert splitter.feed(b"0123456789\n01234567890\nok\n")[0] == b"0123456789"
    assert splitter.feed(b"") == []
