"""One write per response (workloads/inference/transport.py)."""

from __future__ import annotations

from typing import Any

from workloads.inference.transport import CoalescingTransport

HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n"


class RecordingTransport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: Any) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed


def test_the_header_block_goes_out_with_the_body() -> None:
    real = RecordingTransport()
    transport = CoalescingTransport(real)  # type: ignore[arg-type]
    transport.write(HEAD)
    assert real.writes == []
    transport.write(b"{}")
    assert real.writes == [HEAD + b"{}"]


def test_100_continue_and_whole_responses_are_not_held() -> None:
    real = RecordingTransport()
    transport = CoalescingTransport(real)  # type: ignore[arg-type]
    transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    transport.write(HEAD + b"{}")
    assert real.writes == [b"HTTP/1.1 100 Continue\r\n\r\n", HEAD + b"{}"]


def test_a_held_header_block_is_flushed_by_close_and_at_the_end_of_a_response() -> None:
    real = RecordingTransport()
    transport = CoalescingTransport(real)  # type: ignore[arg-type]
    transport.write(HEAD)
    transport.flush()
    assert real.writes == [HEAD]
    transport.write(HEAD)
    transport.close()
    assert real.writes == [HEAD, HEAD] and real.closed
    assert transport.is_closing()  # everything else is the real transport's
