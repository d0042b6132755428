"""A recording HTTP proxy on loopback in front of the local S3 API server.

Tests point a courier's `endpoint_url` at it to see exactly which requests a run makes (method,
path, query and the access key that signed them).
"""

from __future__ import annotations

import http.client
import re
import threading
from dataclasses import dataclass
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


class RecordingProxy:
    def __init__(self, upstream: str):
        self.upstream = urlparse(upstream)
        self.requests: list[Request] = []
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
                proxy.requests.append(Request(self.command, unquote(parsed.path), parse_qs(parsed.query),
                                              match.group(1) if match else ""))
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
                if self.command != "HEAD":
                    self.wfile.write(data)
                upstream.close()

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _forward

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> "RecordingProxy":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:  # noqa: ANN002
        self._server.shutdown()
        self._server.server_close()

    def listings(self) -> list[Request]:
        return [r for r in self.requests if r.method == "GET" and "list-type" in r.query]
