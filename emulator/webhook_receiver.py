"""A real HTTP receiver for coaching notifications, on 127.0.0.1.

Every POST is appended to a JSON-lines record file (path, headers, body) and answered 204, so the
demo and the tests can check what really arrived over the wire. A path starting with
``/status/<code>/`` answers with that status instead, to exercise delivery failures.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


def make_server(port: int, record: Path) -> ThreadingHTTPServer:
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode("utf-8", errors="replace")
            status = 204
            parts = self.path.strip("/").split("/")
            if len(parts) >= 2 and parts[0] == "status" and parts[1].isdigit():
                status = int(parts[1])
            entry = {
                "received_at": time.time(),
                "path": self.path,
                "status": status,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body,
            }
            with lock, record.open("a", encoding="utf-8") as out:
                out.write(json.dumps(entry) + "\n")
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:  # keep the demo's output readable
            pass

    return ThreadingHTTPServer(("127.0.0.1", port), Handler)


def serve_forever(port: int, record: Path, port_file: Path | None = None) -> None:
    record.parent.mkdir(parents=True, exist_ok=True)
    record.touch()
    server = make_server(port, record)
    if port_file:
        port_file.write_text(str(server.server_address[1]))
    print(f"webhook receiver listening on http://127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()


def read_record(record: Path) -> list[dict[str, Any]]:
    if not record.exists():
        return []
    return [json.loads(line) for line in record.read_text(encoding="utf-8").splitlines() if line.strip()]
