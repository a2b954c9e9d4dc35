from __future__ import annotations

import asyncio

import msgspec
import pytest

from tekton_common.errors import LineTooLongError, ProtocolError
from tekton_common.socket_server import read_lines
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


async def _lines(data: bytes, limit: int) -> list[bytes | str]:
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    return [
        item if isinstance(item, bytes) else f"error:{type(item).__name__}"
        async for item in read_lines(reader, limit)
    ]


async def test_read_lines_skips_oversized_lines_and_keeps_going() -> None:
    big = b"x" * 300_000
    got = await _lines(b"one\n" + big + b"\ntwo\n\n" + big + b"tail\nthree", 100_000)
    assert got == [
        b"one",
        f"error:{LineTooLongError.__name__}",
        b"two",
        f"error:{LineTooLongError.__name__}",
    ]
