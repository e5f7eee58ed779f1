"""`edge-run --serve`: the running pipeline over HTTP (aiohttp), read-only.

    /               the page: live video, a card per face, a label chart, run facts
    /stream.mjpg    the annotated frames, multipart/x-mixed-replace JPEG, at most --serve-fps
    /events         Server-Sent Events: one per frame with faces, the frame's JSONL records
    /snapshot.jpg   the newest annotated frame
    /healthz        200 with frames, FPS and seconds since the last frame per source; 503 when stalled
    /metrics        Prometheus text: frames, faces, dropped frames, stage latency histograms

Only GET, no CORS headers, nothing takes a path or changes a setting. Off loopback a token is
required (`?token=` once, then a cookie; or `Authorization: Bearer`), compared in constant time.
The server runs on its own thread and event loop; the pipeline only publishes to the `Hub`.
"""

from __future__ import annotations

import asyncio
import hmac
import threading
import time
from importlib.resources import files

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from edge_runtime.serve import ServeError
from edge_runtime.serve.hub import Hub

TOKEN_COOKIE = "edge_emotion_token"
BOUNDARY = "frame"
STAGE_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25)  # seconds


class Viewers:
    """Counts open streams (/stream.mjpg and /events) against the limit."""

    def __init__(self, hub: Hub, limit: int) -> None:
        self.hub, self.limit, self.open = hub, limit, 0

    def enter(self) -> bool:
        if self.open >= self.limit:
            return False
        self.open += 1
        self.hub.viewers = self.open
        return True

    def leave(self) -> None:
        self.open -= 1
        self.hub.viewers = self.open


def build_app(hub: Hub, token: str | None, max_clients: int, stall_timeout: float) -> web.Application:
    """The web application over a hub, whose `max_fps` is the stream's rate (tests drive it with
    aiohttp's test client)."""
    app = web.Application(middlewares=[_auth(token)] if token else [])
    viewers = Viewers(hub, max_clients)
    metrics = _Metrics(hub)
    page = files("edge_runtime.serve").joinpath("page.html").read_bytes()

    async def index(request: web.Request) -> web.Response:
        response = web.Response(body=page, content_type="text/html")
        if token and request.query.get("token"):
            response.set_cookie(TOKEN_COOKIE, request.query["token"], httponly=True, samesite="Strict")
        return response

    async def stream(request: web.Request) -> web.StreamResponse:
        if not viewers.enter():
            return web.json_response({"error": f"at most {max_clients} streams at once"}, status=503)
        source = request.query.get("source")
        response = web.StreamResponse(headers={"Content-Type": f"multipart/x-mixed-replace; boundary={BOUNDARY}",
                                               "Cache-Control": "no-store"})
        try:
            await response.prepare(request)
            sent = 0
            while True:
                version = hub.version
                state = _first(hub, source)
                jpeg, number, wait = hub.stream_jpeg(state) if state is not None else (None, 0, 0.0)
                if jpeg is not None and number != sent:
                    sent = number
                    # The newest frame or nothing: a slow viewer's write waits here, the pipeline never does.
                    await response.write(f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n".encode()
                                         + jpeg + b"\r\n")
                if wait > 0:
                    await asyncio.sleep(wait)  # a newer frame waits for the hub's rate (--serve-fps)
                else:
                    await hub.wait_for_change(version, 1.0)
        except (ConnectionResetError, asyncio.CancelledError):
            pass  # the viewer left, or the server stops: routine
        finally:
            viewers.leave()
        return response

    async def events(request: web.Request) -> web.StreamResponse:
        if not viewers.enter():
            return web.json_response({"error": f"at most {max_clients} streams at once"}, status=503)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"})
        try:
            await response.prepare(request)
            seen: dict[str, int] = {}
            while True:
                version = hub.version
                for state in list(hub.sources.values()):
                    data, seen[state.name] = hub.events_after(state, seen.get(state.name, 0))
                    if data:
                        await response.write(data)  # every frame with faces since the last visit, at once
                await hub.wait_for_change(version, 1.0)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            viewers.leave()
        return response

    async def snapshot(request: web.Request) -> web.Response:
        jpeg = hub.snapshot_jpeg(request.query.get("source"))
        if jpeg is None:
            return web.json_response({"error": "no frame yet"}, status=503)
        return web.Response(body=jpeg, content_type="image/jpeg", headers={"Cache-Control": "no-store"})

    async def healthz(request: web.Request) -> web.Response:
        now = time.monotonic()
        sources, stalled = {}, []
        for state in list(hub.sources.values()):
            since = None if state.last_frame_at is None else round(now - state.last_frame_at, 3)
            if since is None or since > stall_timeout:
                stalled.append(state.name)
            sources[state.name] = {"frames": state.frames, "fps": round(state.fps, 2), "latency_ms": round(state.latency_ms, 2),
                                   "dropped": state.dropped, "seconds_since_last_frame": since}
        body = {"status": "stalled" if stalled or not sources else "ok", "stalled": stalled, "sources": sources, **hub.run_info}
        return web.json_response(body, status=503 if stalled or not sources else 200)

    async def prometheus(request: web.Request) -> web.Response:
        return web.Response(body=metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    app.router.add_get("/", index)
    app.router.add_get("/stream.mjpg", stream)
    app.router.add_get("/events", events)
    app.router.add_get("/snapshot.jpg", snapshot)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", prometheus)
    return app


def _first(hub: Hub, source: str | None):
    if source is not None:
        return hub.sources.get(source)
    return next(iter(hub.sources.values()), None)


def _auth(token: str):
    expected = token.encode()

    @web.middleware
    async def middleware(request: web.Request, handler):
        given = request.query.get("token") or request.cookies.get(TOKEN_COOKIE) or ""
        header = request.headers.get("Authorization", "")
        if header.startswith("Bearer "):
            given = header[len("Bearer "):]
        if not hmac.compare_digest(given.encode(), expected):
            return web.Response(status=401, text="401: a token is required (?token=... or Authorization: Bearer ...)\n")
        return await handler(request)

    return middleware


class _Metrics:
    """Prometheus metrics of the hub, in a registry of their own (never the process-global one)."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.registry = CollectorRegistry()
        self.frames = Counter("edge_emotion_frames", "Frames processed", ["source"], registry=self.registry)
        self.faces = Counter("edge_emotion_faces", "Faces found", ["source"], registry=self.registry)
        self.dropped = Counter("edge_emotion_dropped_frames", "Live frames dropped for newer ones", ["source"], registry=self.registry)
        self.fps = Gauge("edge_emotion_fps", "Frames per second (smoothed)", ["source"], registry=self.registry)
        self.stages = Histogram("edge_emotion_stage_seconds", "Seconds per frame in a pipeline stage", ["source", "stage"],
                                buckets=STAGE_BUCKETS, registry=self.registry)
        self._counted: dict[str, tuple[int, int, int]] = {}

    def render(self) -> bytes:
        for name, stages in self.hub.take_stage_seconds().items():
            for stage, values in stages.items():
                for value in values:
                    self.stages.labels(name, stage).observe(value)
        for state in list(self.hub.sources.values()):
            frames, faces, dropped = self._counted.get(state.name, (0, 0, 0))
            self.frames.labels(state.name).inc(state.frames - frames)
            self.faces.labels(state.name).inc(state.faces - faces)
            self.dropped.labels(state.name).inc(state.dropped - dropped)
            self._counted[state.name] = (state.frames, state.faces, state.dropped)
            self.fps.labels(state.name).set(state.fps)
        return generate_latest(self.registry)


class Server:
    """The app on its own thread and event loop, started and stopped by the pipeline's run."""

    def __init__(self, hub: Hub, host: str, port: int, token: str | None, max_clients: int, stall_timeout: float) -> None:
        self.hub, self.host, self.port = hub, host, port
        self._app_args = (token, max_clients, stall_timeout)
        self._ready = threading.Event()
        self._error: str = ""
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._run, name="edge-run-serve", daemon=True)

    def start(self) -> None:
        """Starts serving, or raises ServeError with one line (the port is taken, ...)."""
        self._thread.start()
        self._ready.wait(15)
        if self._error:
            raise ServeError(self._error)

    def stop(self) -> None:
        """Stops the server; open streams end. Returns within about a second."""
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(stop.set)
        self._thread.join(timeout=2.0)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except Exception as error:  # noqa: BLE001 - reported as one line by start()
            self._error = self._error or f"--serve {self.host}:{self.port}: {error}"
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self.hub.attach(self._loop)
        # Open streams never end by themselves: waiting longer for them only delays the stop.
        runner = web.AppRunner(build_app(self.hub, *self._app_args), handle_signals=False, shutdown_timeout=0.1,
                               access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, self.host, self.port).start()
        except OSError as error:
            self._error = f"--serve {self.host}:{self.port}: cannot listen there ({error.strerror or error})"
            self._ready.set()
            await runner.cleanup()
            return
        self._ready.set()
        await self._stop.wait()
        await runner.cleanup()

