"""The live window. The project installs opencv-python-headless (no libGL, no GUI), whose
`cv2.imshow` exists but raises, so the window is checked before the loop starts."""

from __future__ import annotations

import os
import sys

import cv2
import numpy as np

WINDOW_TITLE = "edge-run (q or Esc quits)"
QUIT_KEYS = (ord("q"), ord("Q"), 27)
GUI_INSTALL_HINT = 'pip uninstall -y opencv-python-headless && pip install "opencv-python>=4.8,<5"'


class DisplayError(RuntimeError):
    """No window can be shown; the message says to use --no-display or how to get a GUI."""


def _gui_backend() -> str:
    for line in cv2.getBuildInformation().splitlines():
        if line.strip().startswith("GUI:"):
            return line.split(":", 1)[1].strip()
    return ""


def display_problem() -> str | None:
    """Why no window can be opened here, or None when one can."""
    if _gui_backend().upper() == "NONE":
        return (
            f"this OpenCV ({cv2.__version__}, headless) cannot open a window; use --no-display, "
            f"or for a window: {GUI_INSTALL_HINT}"
        )
    # A Qt/GTK OpenCV aborts the whole process when it cannot reach a display server.
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return "no display found (DISPLAY is not set); use --no-display, or run inside a desktop session"
    return None


class Window:
    """One OpenCV window; `show` returns False once the user pressed q or Esc or closed it.

    Raises:
        DisplayError: when this OpenCV or this session cannot open windows.
    """

    def __init__(self, title: str = WINDOW_TITLE) -> None:
        problem = display_problem()
        if problem:
            raise DisplayError(problem)
        self.title = title
        try:
            cv2.namedWindow(title, cv2.WINDOW_NORMAL)
        except cv2.error:
            raise DisplayError(f"OpenCV cannot open a window here; use --no-display, or for a window: {GUI_INSTALL_HINT}") from None
        self._open = True

    def show(self, frame: np.ndarray) -> bool:
        if not self._open:
            return False
        cv2.imshow(self.title, frame)
        key = cv2.waitKey(1) & 0xFF
        try:
            # The window's close button: the property turns below 1 once it is gone.
            closed = cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1
        except cv2.error:
            closed = True
        if key in QUIT_KEYS or closed:
            self.close()
            return False
        return True

    def close(self) -> None:
        if self._open:
            self._open = False
            try:
                cv2.destroyWindow(self.title)
                cv2.waitKey(1)
            except cv2.error:
                pass
