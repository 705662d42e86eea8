"""An HTTP server run in a background thread (the object store and the control API)."""

from __future__ import annotations

import threading
from http.server import ThreadingHTTPServer


class BackgroundServer:
    """Subclasses set `self.httpd` (and `self.port`) in __init__; start() and stop() run it."""

    name = "http"
    httpd: ThreadingHTTPServer
    _thread: threading.Thread | None = None

    def start(self):  # -> Self
        self._thread = threading.Thread(target=self.httpd.serve_forever, name=self.name, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        if self._thread:
            self._thread.join(timeout=5)
