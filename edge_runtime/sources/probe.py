"""Why a stream did not open. OpenCV only says that it did not; one TCP connection to the
URL's host and port tells a refused port or an unknown host from a server that answered with
something that is not a video stream."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

DEFAULT_PORTS = {"http": 80, "https": 443, "rtsp": 554, "rtsps": 322, "rtmp": 1935}
# The probe runs only after OpenCV has failed, so it may take a moment, but not a stall's worth.
PROBE_TIMEOUT_S = 2.0


def why_not_opened(url: str, timeout_s: float = PROBE_TIMEOUT_S) -> str:
    """What stands between `url` and a stream, as a phrase; "" when a probe cannot tell (UDP).

    Args:
        url: the stream URL OpenCV failed to open.
        timeout_s: how long the TCP connection may take.
    """
    parts = urlsplit(url)
    try:
        port = parts.port or DEFAULT_PORTS.get(parts.scheme.lower())
    except ValueError:
        return f"the port in {parts.netloc} is not a number from 0 to 65535"
    host = parts.hostname
    if not host or not port or parts.scheme.lower() == "udp":
        return ""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return f"{host}:{port} answered, but not with a video stream OpenCV can read"
    except socket.gaierror:
        return f"unknown host {host}"
    except ConnectionRefusedError:
        return f"connection refused by {host}:{port}"
    except TimeoutError:
        return f"{host}:{port} did not answer within {timeout_s:g} s"
    except OSError as error:
        return f"{host}:{port} cannot be reached ({error.strerror or error})"
