"""`shiftbench leaderboard --serve`: the built site over HTTP on 127.0.0.1 only (Python's http.server)."""

from __future__ import annotations

import functools
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the name is http.server's
        pass


def make_server(site_dir: Path, port: int = 8000) -> ThreadingHTTPServer:
    """A server for site_dir bound to the loopback interface; port 0 picks a free one."""
    handler = functools.partial(QuietHandler, directory=str(site_dir))
    return ThreadingHTTPServer(("127.0.0.1", port), handler)


def serve(site_dir: Path, port: int = 8000) -> None:
    try:
        server = make_server(site_dir, port)
    except OSError as e:
        from ..core.errors import UserError

        raise UserError(f"cannot listen on 127.0.0.1:{port} ({e.strerror}); choose another with --port", field="--port") from None
    host, bound = server.server_address[:2]
    print(f"serving {site_dir} at http://{host}:{bound}/ (Ctrl-C stops)", flush=True)
    with server:
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
