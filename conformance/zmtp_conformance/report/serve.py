"""A report folder served on localhost: `zmtp-conformance report --open`.

Allure 3's multi-file report fetches its data with XHR, which browsers
refuse for file:// pages, so opened by double-click it shows a spinner
forever. Served over http from the report folder (not only the Allure
output), its links to ../captures/ and ../matrix.html work too.
"""

from __future__ import annotations

import functools
import http.server
import os
import sys
import threading
import webbrowser
from collections.abc import Callable
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # one line per request would bury the URL
        pass


def make_server(root: Path, port: int = 0) -> http.server.ThreadingHTTPServer:
    """An http server for `root` on 127.0.0.1 (port 0: any free port); not yet serving."""
    handler = functools.partial(_QuietHandler, directory=str(root))
    return http.server.ThreadingHTTPServer((HOST, port), handler)


def url(server: http.server.ThreadingHTTPServer, root: Path, page: Path) -> str:
    rel = page.resolve().relative_to(root.resolve()).as_posix()
    return f"http://{HOST}:{server.server_address[1]}/{rel}"


def root_for(page: Path, report_dir: Path) -> Path:
    """What to serve: the report folder when the page is inside it (so links to captures work), else the page's."""
    page, report_dir = page.resolve(), report_dir.resolve()
    return report_dir if report_dir in page.parents else page.parent


def can_open_browser() -> bool:
    # Without a display, webbrowser falls back to a text browser that would take over the terminal.
    return sys.platform in ("darwin", "win32") or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def serve(
    page: Path,
    report_dir: Path,
    port: int = 0,
    open_browser: bool = True,
    announce: Callable[[str], None] = print,
    stop: threading.Event | None = None,
) -> None:
    """Serves the folder `page` sits in until Ctrl-C (or `stop` is set); announces the page's URL first."""
    root = root_for(page, report_dir)
    server = make_server(root, port)
    address = url(server, root, page)
    thread = threading.Thread(target=server.serve_forever, name="report-server", daemon=True)
    thread.start()
    announce(f"serving {root} at {address} (Ctrl-C stops)")
    if open_browser and can_open_browser():
        webbrowser.open(address)
    stop = stop or threading.Event()
    try:
        while not stop.wait(0.5):  # short waits, so Ctrl-C is seen at once
            pass
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
