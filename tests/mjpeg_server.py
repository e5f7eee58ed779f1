"""A local MJPEG-over-HTTP camera for tests: 127.0.0.1 only, stoppable, restartable on the same
port, and it stops itself after `lifetime_s` so a failed test never leaves it serving."""

from __future__ import annotations

import http.server
import socketserver
import threading
import time

import cv2
import numpy as np

BOUNDARY = b"frame"


def numbered_frame(number: int, level: int) -> np.ndarray:
    """A 160x120 picture that differs from frame to frame (its number is drawn on it)."""
    frame = np.full((120, 160, 3), level, np.uint8)
    cv2.putText(frame, str(number % 1000), (10, 80), cv2.FONT_HERSHEY_SIMPLEX, 2, (255, 255, 255), 3)
    return frame


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class MJPEGServer:
    """Serves `multipart/x-mixed-replace` JPEG frames at `url`, about `fps` a second.

    Args:
        level: grey level of the pictures (tells one server generation from another).
        frozen: send the same picture forever (a frozen encoder).
        port: 0 picks a free port; pass the old one to restart in place.
        lifetime_s: the server stops itself after this long.
    """

    def __init__(self, level: int = 60, frozen: bool = False, port: int = 0, fps: float = 20.0, lifetime_s: float = 60.0) -> None:
        self.level, self.frozen, self.fps = level, frozen, fps
        self._stopping = threading.Event()
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY.decode()}")
                self.end_headers()
                number = 0
                try:
                    while not owner._stopping.is_set():
                        picture = numbered_frame(0 if owner.frozen else number, owner.level)
                        jpeg = cv2.imencode(".jpg", picture)[1].tobytes()
                        head = b"--%s\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % (BOUNDARY, len(jpeg))
                        self.wfile.write(head + jpeg + b"\r\n")
                        number += 1
                        owner._stopping.wait(1.0 / owner.fps)
                except OSError:
                    pass  # the client went away

        self._server = _Server(("127.0.0.1", port), Handler)
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/stream"
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
        self._timer = threading.Timer(lifetime_s, self.stop)
        self._timer.daemon = True
        self._timer.start()

    def stop(self) -> None:
        """Stops serving and closes every connection; idempotent."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        self._timer.cancel()
        self._server.shutdown()
        self._server.server_close()
        time.sleep(0.2)  # let the handler threads see the flag and close their sockets

    def __enter__(self) -> MJPEGServer:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
