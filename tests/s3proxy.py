"""A recording, fault-injecting HTTP proxy on loopback in front of the local S3 API server.

Tests point a courier's `endpoint_url` at it to see exactly which requests a run makes (method,
path, query and the access key that signed them) and to inject faults: error statuses (503
SlowDown, 500, 403 AccessDenied, 301 redirects), connection resets before or in the middle of a
response body, and slow responses.
"""

from __future__ import annotations

import http.client
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlparse

_CREDENTIAL = re.compile(r"Credential=([^/]+)/")


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # URL-decoded
    query: dict
    access_key_id: str

    @property
    def prefix(self) -> str:
        return self.query.get("prefix", [""])[0]


@dataclass
class Fault:
    """What to do instead of (or to) one forwarded request."""

    kind: str  # "status" | "reset" | "cut_body" | "delay"
    status: int = 503
    code: str = "SlowDown"
    message: str = "Please reduce your request rate."
    headers: dict = field(default_factory=dict)
    seconds: float = 0.0


def error_body(code: str, message: str) -> bytes:
    return (f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code><Message>{message}</Message>'
            f"<RequestId>fault</RequestId></Error>").encode()


class RecordingProxy:
    def __init__(self, upstream: str, fault: Callable[[Request], Fault | None] | None = None):
        self.upstream = urlparse(upstream)
        self.requests: list[Request] = []
        self.injected: list[tuple[Request, Fault]] = []
        self.fault = fault
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # noqa: ANN002 - silence per-request logging
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                parsed = urlparse(self.path)
                auth = self.headers.get("Authorization", "")
                match = _CREDENTIAL.search(auth)
                request = Request(self.command, unquote(parsed.path), parse_qs(parsed.query),
                                  match.group(1) if match else "")
                proxy.requests.append(request)
                fault = proxy.fault(request) if proxy.fault else None
                if fault is not None:
                    proxy.injected.append((request, fault))
                    if fault.kind == "reset":
                        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                        self.close_connection = True
                        self.connection.close()
                        return
                    if fault.kind == "status":
                        data = error_body(fault.code, fault.message) if self.command != "HEAD" else b""
                        self.send_response(fault.status)
                        for key, value in fault.headers.items():
                            self.send_header(key, value)
                        self.send_header("Content-Type", "application/xml")
                        self.send_header("Content-Length", str(len(data)))
                        self.end_headers()
                        self.wfile.write(data)
                        return
                    if fault.kind == "delay":
                        time.sleep(fault.seconds)
                upstream = http.client.HTTPConnection(proxy.upstream.hostname, proxy.upstream.port, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
                upstream.request(self.command, self.path, body=body, headers=headers)
                response = upstream.getresponse()
                data = response.read()
                self.send_response(response.status)
                for key, value in response.getheaders():
                    if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if fault is not None and fault.kind == "cut_body":  # headers promise more than arrives
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    upstream.close()
                    return
                if self.command != "HEAD":
                    self.wfile.write(data)
                upstream.close()

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _forward

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> RecordingProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:  # noqa: ANN002
        self._server.shutdown()
        self._server.server_close()

    def listings(self) -> list[Request]:
        return [r for r in self.requests if r.method == "GET" and "list-type" in r.query]
