"""One write per response: uvicorn's HTTP protocol with its header and body writes joined.

uvicorn writes a response's status line and headers when the app sends `http.response.start` and
the body on `http.response.body`: two `send` syscalls, and on loopback or a node-local proxy the
sender also pays the receiving side's TCP processing for each. For a small JSON answer that was
the largest single cost of an invocation (a third of the server's CPU, measured with py-spy).
Here the header block is held back and goes out with the body, in one write.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

_HEADER_END = b"\r\n\r\n"
_CONTINUE = b"HTTP/1.1 100 "


class CoalescingTransport:
    """A transport that holds a response's header block until the next write (its body), a close or
    the end of the response. Everything else goes straight to the real transport."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._held = b""

    def write(self, data: bytes) -> None:
        if self._held:
            data = self._held + data
            self._held = b""
        elif data.startswith(b"HTTP/") and data.endswith(_HEADER_END) and not data.startswith(_CONTINUE):
            self._held = data
            return
        self._transport.write(data)

    def flush(self) -> None:
        if self._held:
            held, self._held = self._held, b""
            self._transport.write(held)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._held = b""
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.transport = CoalescingTransport(transport)  # type: ignore[assignment]

    def on_response_complete(self) -> None:
        self.transport.flush()  # type: ignore[attr-defined]
        super().on_response_complete()
