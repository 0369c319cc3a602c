"""A misbehaving Align for tests: a threaded HTTP server on loopback, scripted per connection.

Each accepted connection reads one request and plays the next scripted behaviour (the last one
repeats). Behaviours write raw bytes to the socket, so they can do what a polite HTTP server
never would: hang after the headers, trickle the body, close mid-body, reset the connection.
Every wait inside a behaviour ends as soon as the server stops, so no thread outlives a test.
"""

import contextlib
import json
import socket
import socketserver
import struct
import threading
import time
from collections.abc import Callable
from email.utils import formatdate

Behaviour = Callable[["FaultServer", socket.socket], None]


class FaultServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, script: list[Behaviour]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.script = list(script)
        self.requests: list[bytes] = []
        self.stopping = threading.Event()
        self._lock = threading.Lock()

    @property
    def base_url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def next_behaviour(self, request: bytes) -> Behaviour:
        with self._lock:
            self.requests.append(request)
            return self.script.pop(0) if len(self.script) > 1 else self.script[0]

    def pause(self, seconds: float) -> bool:
        """Sleep, but wake when the server stops; True when the full time passed."""
        return not self.stopping.wait(seconds)

    def start(self) -> "FaultServer":
        self._thread = threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.shutdown()
        self.server_close()
        self._thread.join(timeout=2)


class _Handler(socketserver.BaseRequestHandler):
    server: FaultServer

    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.settimeout(5)
        received = b""
        try:
            while b"\r\n\r\n" not in received:
                chunk = sock.recv(4096)
                if not chunk:
                    return
                received += chunk
        except OSError:
            return
        behaviour = self.server.next_behaviour(received.split(b"\r\n\r\n", 1)[0])
        with contextlib.suppress(OSError):
            behaviour(self.server, sock)


def _head(status: int, headers: dict[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status} Scripted"] + [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def respond(
    status: int = 200,
    body: bytes | str | object = b"",
    *,
    content_type: str | None = "application/json",
    headers: dict[str, str] | None = None,
    after: float = 0.0,
) -> Behaviour:
    """A complete answer, optionally after a delay; non-bytes bodies are sent as JSON."""
    if isinstance(body, str):
        payload = body.encode()
    elif isinstance(body, bytes):
        payload = body
    else:
        payload = json.dumps(body).encode()

    def behaviour(server: FaultServer, sock: socket.socket) -> None:
        if after and not server.pause(after):
            return
        head = {"Content-Length": str(len(payload)), "Connection": "close", **(headers or {})}
        if content_type is not None:
            head["Content-Type"] = content_type
        sock.sendall(_head(status, head) + payload)

    return behaviour


def headers_then_hang(seconds: float = 30.0) -> Behaviour:
    def behaviour(server: FaultServer, sock: socket.socket) -> None:
        sock.sendall(_head(200, {"Content-Type": "application/json", "Content-Length": "500"}) + b'{"cust')
        server.pause(seconds)

    return behaviour


def trickle(payload: bytes, *, every: float = 0.05) -> Behaviour:
    """Send the headers, then the body one byte at a time."""

    def behaviour(server: FaultServer, sock: socket.socket) -> None:
        sock.sendall(_head(200, {"Content-Type": "application/json", "Content-Length": str(len(payload))}))
        for index in range(len(payload)):
            if not server.pause(every):
                return
            sock.sendall(payload[index : index + 1])

    return behaviour


def close_mid_body() -> Behaviour:
    def behaviour(server: FaultServer, sock: socket.socket) -> None:
        sock.sendall(
            _head(200, {"Content-Type": "application/json", "Content-Length": "4000"}) + b'{"customer_id"'
        )

    return behaviour


def reset_connection() -> Behaviour:
    """Close with SO_LINGER 0, so the client sees a TCP reset instead of an orderly close."""

    def behaviour(server: FaultServer, sock: socket.socket) -> None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    return behaviour


def endless_body(size: int, *, declare_length: bool) -> Behaviour:
    """A body of `size` bytes, with or without Content-Length (then it ends at close)."""

    def behaviour(server: FaultServer, sock: socket.socket) -> None:
        head = {"Content-Type": "application/json", "Connection": "close"}
        if declare_length:
            head["Content-Length"] = str(size)
        sock.sendall(_head(200, head))
        block = b" " * 65536
        sent = 0
        while sent < size and not server.stopping.is_set():
            sock.sendall(block)
            sent += len(block)

    return behaviour


def http_date_in(seconds: float) -> str:
    return formatdate(time.time() + seconds, usegmt=True)
