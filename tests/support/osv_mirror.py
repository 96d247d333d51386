"""A loopback HTTP server laid out like OSV's bucket (``{ecosystem}/all.zip``), with ETag and
Last-Modified, for the ``vulndb sync`` tests: nothing is downloaded from anywhere else."""

from __future__ import annotations

import email.utils
import http.server
import threading
from pathlib import Path


class DumpServer:
    """Serves ``{ecosystem}/all.zip`` from a folder on a loopback port with ETag and Last-Modified."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.requests: list[tuple[str, dict[str, str], int]] = []
        handler = self._handler()
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                from urllib.parse import unquote

                path = server.root / unquote(self.path.lstrip("/"))
                headers = {k: v for k, v in self.headers.items() if k.startswith("If-")}
                if not path.is_file():
                    server.requests.append((self.path, headers, 404))
                    self.send_error(404)
                    return
                data = path.read_bytes()
                etag = '"' + str(hash(data) & 0xFFFFFFFF) + '"'
                modified = email.utils.formatdate(path.stat().st_mtime, usegmt=True)
                if self.headers.get("If-None-Match") == etag:
                    server.requests.append((self.path, headers, 304))
                    self.send_response(304)
                    self.end_headers()
                    return
                server.requests.append((self.path, headers, 200))
                self.send_response(200)
                self.send_header("Content-Type", "application/zip")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("ETag", etag)
                self.send_header("Last-Modified", modified)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        return Handler

    def __enter__(self) -> DumpServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
