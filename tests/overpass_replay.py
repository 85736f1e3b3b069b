"""A real Overpass stand-in on loopback: answers every query with a recorded file."""

from __future__ import annotations

import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Replay(BaseHTTPRequestHandler):
    """Answers every POST with the recorded file (or a set status) and keeps the query."""

    answer: bytes = b""
    status: int = 200
    url: str = ""
    queries: list[str] = []  # noqa: RUF012 - shared by the server's handler instances

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        type(self).queries.append(urllib.parse.parse_qs(body)["data"][0])
        self.send_response(self.status)
        self.send_header("Content-Type", "application/osm3s+xml")
        self.send_header("Content-Length", str(len(self.answer)))
        self.end_headers()
        self.wfile.write(self.answer)

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def replay_server(answer: bytes) -> Iterator[type[Replay]]:
    """Serve ``answer`` as Overpass would; the handler class holds ``url`` and ``queries``."""
    handler = type("Handler", (Replay,), {"answer": answer, "queries": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    handler.url = f"http://127.0.0.1:{server.server_address[1]}/api/interpreter"
    try:
        yield handler
    finally:
        server.shutdown()
        server.server_close()
