"""`edge-run --serve`: every endpoint through aiohttp's test client, the token, the client limit,
viewers that stall or leave, a real run stopped by SIGTERM, and the page in a real browser."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

aiohttp = pytest.importorskip("aiohttp", reason="needs the serve extra: pip install -e '.[serve]'")
from aiohttp.test_utils import TestClient, TestServer  # noqa: E402

from edge_runtime.cli import app  # noqa: E402
from edge_runtime.detectors import DetectorSettings  # noqa: E402
from edge_runtime.pipeline.emotion_detector import Face  # noqa: E402
from edge_runtime.serve import parse_address  # noqa: E402
from edge_runtime.serve.app import build_app  # noqa: E402
from edge_runtime.serve.hub import FrameView, Hub  # noqa: E402
from edge_runtime.settings import ModelSettings  # noqa: E402
from edge_runtime.sources.open_source import demo_clip_path  # noqa: E402

EDGE_RUN = Path(sys.executable).parent / "edge-run"
RECORD = {"frame": 0, "time": 0.0, "source": "cam", "detector": "yunet", "track_id": 1, "box": [1, 2, 3, 4], "score": 0.9,
          "label": "happy", "confidence": 0.8, "uncertain": False, "probabilities": {"happy": 0.8}}
FACE = Face(box=(1, 2, 3, 4), track_id=1, label="happy", confidence=0.8, probabilities={"happy": 0.8}, uncertain=False, score=0.9)
TIMINGS = {"detect": 0.003, "preprocess": 0.001, "infer": 0.002}


def frame(value: int = 90) -> np.ndarray:
    return np.full((48, 64, 3), value, np.uint8)


def serve(hub: Hub, check, token: str | None = None, max_clients: int = 8, stall_timeout: float = 5.0):
    """Runs `check(client)` (a coroutine function) against the app on a test server."""
    async def main():
        hub.attach(asyncio.get_running_loop())
        client = TestClient(TestServer(build_app(hub, token, max_clients, stall_timeout)))
        await client.start_server()
        try:
            await check(client)
        finally:
            await client.close()
    asyncio.run(main())


def publish(hub: Hub, count: int = 1, source: str = "cam", faces: bool = True) -> None:
    for index in range(count):
        view = FrameView(frame(index % 255), [FACE] if faces else [], index, 0.0, {"source": source, "detector": "yunet"})
        hub.publish(source, view, TIMINGS)


def test_every_endpoint_answers():
    hub = Hub()
    hub.run_info.update(detector="yunet", backend="onnx", model="m.onnx")

    async def check(client):
        assert (await client.get("/snapshot.jpg")).status == 503  # no frame yet
        assert (await client.get("/healthz")).status == 503
        publish(hub, 3)
        page = await client.get("/")
        assert page.status == 200 and "EventSource" in await page.text() and "http" not in (await page.text()).split("<script>")[1]
        snapshot = await client.get("/snapshot.jpg")
        assert snapshot.status == 200 and (await snapshot.read())[:2] == b"\xff\xd8"
        health = await client.get("/healthz")
        body = await health.json()
        assert health.status == 200 and body["status"] == "ok" and body["sources"]["cam"]["frames"] == 3 and body["detector"] == "yunet"
        metrics = await (await client.get("/metrics")).text()
        assert 'edge_emotion_frames_total{source="cam"} 3.0' in metrics
        assert 'edge_emotion_stage_seconds_count{source="cam",stage="detect"} 3.0' in metrics
        assert (await client.post("/snapshot.jpg")).status == 405  # read-only
        assert "Access-Control-Allow-Origin" not in health.headers

        stream = await client.get("/stream.mjpg")
        assert stream.headers["Content-Type"].startswith("multipart/x-mixed-replace")
        publish(hub, 2)
        part = await asyncio.wait_for(stream.content.read(200), 5)
        assert part.startswith(b"--frame\r\nContent-Type: image/jpeg")
        stream.close()

        events = await client.get("/events")
        publish(hub, 1)
        line = await asyncio.wait_for(events.content.readline(), 5)
        received = json.loads(line.decode()[len("data: "):])
        # The newest frame's records, in the JSONL record schema.
        assert len(received) == 1 and received[0] in (dict(RECORD, frame=0), dict(RECORD, frame=1))
        events.close()

    serve(hub, check)


def test_a_token_is_required_when_one_is_set():
    hub = Hub()
    publish(hub)

    async def check(client):
        assert (await client.get("/healthz")).status == 401
        assert (await client.get("/snapshot.jpg?token=wrong")).status == 401
        assert (await client.get("/healthz", headers={"Authorization": "Bearer s3cret"})).status == 200
        page = await client.get("/?token=s3cret")
        assert page.status == 200 and "edge_emotion_token" in page.cookies
        assert (await client.get("/snapshot.jpg")).status == 200  # the cookie the page got

    serve(hub, check, token="s3cret")


def test_streams_beyond_the_limit_get_503_and_a_stalled_viewer_never_slows_the_pipeline():
    hub = Hub(max_fps=60.0)
    publish(hub)

    async def check(client):
        stalled = await client.get("/stream.mjpg")  # opened, never read
        assert stalled.status == 200
        assert (await client.get("/events")).status == 503
        assert (await client.get("/stream.mjpg")).status == 503
        started = time.perf_counter()
        await asyncio.get_running_loop().run_in_executor(None, publish, hub, 300)
        assert time.perf_counter() - started < 5.0, "publishing waited for a viewer"
        assert hub.sources["cam"].frames == 301
        stalled.close()
        for _ in range(50):  # the server sees the viewer go, and the slot frees up
            await asyncio.sleep(0.05)
            if hub.viewers == 0:
                break
        assert hub.viewers == 0
        assert (await client.get("/events")).status == 200

    serve(hub, check, max_clients=1)


def test_a_source_without_frames_for_the_stall_timeout_is_unhealthy():
    hub = Hub()
    publish(hub)

    async def check(client):
        await asyncio.sleep(0.4)
        health = await client.get("/healthz")
        assert health.status == 503 and (await health.json())["stalled"] == ["cam"]

    serve(hub, check, stall_timeout=0.2)


class CountedView(FrameView):
    """A published frame that notes each time the server draws it or serializes its records."""

    def drawn(self):
        WORK.append("draw")
        return super().drawn()

    def event(self):
        WORK.append("event")
        return super().event()


WORK: list[str] = []


def publish_counted(hub: Hub, count: int, pause_s: float = 0.0) -> None:
    for index in range(count):
        hub.publish("cam", CountedView(frame(index % 255), [FACE], index, 0.0, {"source": "cam", "detector": "yunet"}), TIMINGS)
        time.sleep(pause_s)


async def read_for(response, seconds: float) -> bytes:
    """What a viewer receives in `seconds`."""
    received, deadline = b"", time.monotonic() + seconds
    with contextlib.suppress(asyncio.TimeoutError):
        while time.monotonic() < deadline:
            received += await asyncio.wait_for(response.content.readany(), max(0.01, deadline - time.monotonic()))
    return received


def test_frames_nobody_takes_are_never_drawn_and_viewers_share_one_encoding_at_the_stream_rate():
    hub = Hub(max_fps=10.0)
    WORK.clear()

    async def check(client):
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, publish_counted, hub, 50)
        assert WORK == [], "frames were drawn or serialized with nobody watching"
        assert (await (await client.get("/snapshot.jpg")).read())[:2] == b"\xff\xd8"
        assert WORK == ["draw"]  # the snapshot drew the newest frame, once
        viewers = [await client.get("/stream.mjpg") for _ in range(4)]
        WORK.clear()
        started = time.monotonic()
        publishing = loop.run_in_executor(None, publish_counted, hub, 300, 0.005)
        received = await asyncio.gather(*(read_for(viewer, 1.5) for viewer in viewers))
        elapsed = time.monotonic() - started
        await publishing
        draws = WORK.count("draw")
        # At most --serve-fps encodings a second, whatever the number of viewers: 4 viewers, one encoding each frame sent.
        assert 1 <= draws <= 10 * elapsed + 2, (draws, elapsed)
        parts = [part.count(b"--frame\r\n") for part in received]
        assert min(parts) >= 1 and sum(parts) > draws, (parts, draws)
        for viewer in viewers:
            viewer.close()

    serve(hub, check)


def test_a_frame_s_records_are_serialized_once_for_every_events_viewer():
    hub = Hub()
    WORK.clear()

    async def check(client):
        viewers = [await client.get("/events") for _ in range(3)]
        publishing = asyncio.get_running_loop().run_in_executor(None, publish_counted, hub, 20, 0.02)
        received = await asyncio.gather(*(read_for(viewer, 1.0) for viewer in viewers))
        await publishing
        events = [part.count(b"data: ") for part in received]
        assert all(json.loads(line[len(b"data: "):]) == [dict(RECORD, frame=json.loads(line[len(b"data: "):])[0]["frame"])]
                   for part in received for line in part.split(b"\n\n") if line)
        assert min(events) >= 1 and WORK.count("event") <= 20 and sum(events) > WORK.count("event"), (events, WORK.count("event"))
        for viewer in viewers:
            viewer.close()

    serve(hub, check)


def test_events_carry_every_frame_with_faces_since_the_last_visit_up_to_the_kept_number():
    from edge_runtime.serve.hub import EVENTS_KEPT

    hub = Hub()
    publish(hub, 3)
    publish(hub, 2, faces=False)  # frames without faces have no event
    state = hub.sources["cam"]
    data, newest = hub.events_after(state, 0)
    assert [json.loads(line[len(b"data: "):])[0]["frame"] for line in data.split(b"\n\n") if line] == [0, 1, 2]
    assert hub.events_after(state, newest) == (b"", newest)  # nothing new: nothing sent again
    publish(hub, EVENTS_KEPT + 5)
    data, newest = hub.events_after(state, 3)
    assert data.count(b"data: ") == EVENTS_KEPT and newest == 3 + EVENTS_KEPT + 5  # a viewer far behind skips to the kept ones
    assert len(state.event_bytes) == EVENTS_KEPT  # serialized once, and no more kept than the queue


def test_the_pipeline_wakes_the_server_only_for_a_waiting_viewer():
    class Loop:
        calls = 0

        def call_soon_threadsafe(self, callback):
            self.calls += 1

    hub, loop = Hub(), Loop()
    hub._loop = loop
    publish(hub, 5)
    assert loop.calls == 0  # nobody waits: the pipeline thread never touches the server's loop
    hub._waiting = 1
    publish(hub, 5)
    assert loop.calls == 1  # one wake-up on its way covers the frames after it


@pytest.mark.parametrize("sources", [1, 2])
def test_a_served_run_nobody_watches_draws_no_frame(sources, tmp_path, monkeypatch):
    import edge_runtime.outputs.draw
    import edge_runtime.pipeline.stream
    from edge_runtime.pipeline.runner import RunConfig, run
    from tests.conftest import FIXTURE_MODELS
    from tests.test_video_job import cut_demo

    drawn = []
    draw = edge_runtime.outputs.draw.draw_faces
    counted = lambda *args, **kwargs: drawn.append(1) or draw(*args, **kwargs)  # noqa: E731
    monkeypatch.setattr(edge_runtime.outputs.draw, "draw_faces", counted)
    monkeypatch.setattr(edge_runtime.pipeline.stream, "draw_faces", counted)
    clips = [str(cut_demo(tmp_path / f"{index}.mp4", 0, 20)) for index in range(sources)]
    summary = run(RunConfig(source=clips[0], more_sources=tuple(clips[1:]), model=ModelSettings(FIXTURE_MODELS["onnx"], "onnx"),
                            detector=DetectorSettings(name="haar"), display=False, serve=("127.0.0.1", free_port())))
    assert summary.frames == 20 * sources and summary.faces > 0
    assert drawn == []


@pytest.mark.parametrize("address, message", [
    ("0.0.0.0:8080", "listens beyond this machine"),
    ("host:99999", "expected [HOST:]PORT"),
])
def test_serve_addresses_that_are_refused(address, message, monkeypatch):
    monkeypatch.delenv("EDGE_EMOTION_TOKEN", raising=False)
    result = CliRunner().invoke(app, ["--source", "demo", "--serve", address])
    assert result.exit_code == 2 and message in result.output


def test_addresses_parse():
    assert parse_address("8080") == ("127.0.0.1", 8080)
    assert parse_address("0.0.0.0:81") == ("0.0.0.0", 81)
    assert parse_address("[::1]:82") == ("::1", 82)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def get(url: str, timeout: float = 2.0):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def wait_until_serving(port: int, process, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if get(f"http://127.0.0.1:{port}/healthz")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"edge-run --serve did not serve: {process.poll()}")


def test_a_served_run_stops_on_sigterm_with_its_server_and_outputs(tmp_path):
    port = free_port()
    records = tmp_path / "run.jsonl"
    process = subprocess.Popen([str(EDGE_RUN), "--source", "demo", "--loop", "--detector", "haar", "--serve", str(port),
                                "--jsonl", str(records)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until_serving(port, process)
        status, body = get(f"http://127.0.0.1:{port}/snapshot.jpg")
        assert status == 200 and body[:2] == b"\xff\xd8"
        process.send_signal(signal.SIGTERM)
        started = time.monotonic()
        stdout, stderr = process.communicate(timeout=30)
        assert time.monotonic() - started < 5
    finally:
        process.kill()
    assert process.returncode == 143, stderr
    assert "stopped: SIGTERM" in stdout and f"wrote {records}" in stdout
    assert all(json.loads(line) for line in records.read_text().splitlines())
    with pytest.raises(OSError):
        get(f"http://127.0.0.1:{port}/healthz", timeout=1)


def browser():
    webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium: pip install -e '.[test]'")
    driver_path = shutil.which("chromedriver")
    if driver_path is None or shutil.which("chromium") is None and shutil.which("chromium-browser") is None:
        pytest.skip("needs Chromium and its driver: apt-get install chromium chromium-driver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for argument in ("--headless=new", "--disable-dev-shm-usage", "--window-size=1280,1000"):
        options.add_argument(argument)
    if os.geteuid() == 0:
        options.add_argument("--no-sandbox")  # Chromium refuses to run as root inside its sandbox
    return webdriver.Chrome(service=Service(driver_path), options=options)


def test_the_page_in_a_real_browser_shows_the_video_and_a_card_per_face_of_the_events(tmp_path):
    driver = browser()
    second = tmp_path / "door.mp4"
    second.write_bytes(demo_clip_path().read_bytes())
    try:
        with serving(str(demo_clip_path())) as port:
            driver.get(f"http://127.0.0.1:{port}/")
            deadline = time.monotonic() + 15
            cards, width = [], 0
            while time.monotonic() < deadline and not (cards and width):
                time.sleep(0.2)
                width = driver.execute_script("const i = document.querySelector('img'); return i ? i.naturalWidth : 0")
                cards = driver.execute_script(
                    "return [...document.querySelectorAll('.card')].map(c => [c.dataset.source, c.dataset.track, c.dataset.label])")
            assert width == 640, "the video image loaded"
            assert cards, "face cards appeared"
            # The cards are the records of one frame of /events: same source, tracks and labels.
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/events", timeout=5) as events:
                records = json.loads(events.readline().decode()[len("data: "):])
            assert {card[0] for card in cards} == {records[0]["source"]}
            assert all(label in ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise") for _, _, label in cards)
            assert driver.find_element("css selector", "#status").text.startswith("ok")
            driver.save_screenshot(str(tmp_path / "page.png"))
        # A second source adds a tile.
        with serving(str(demo_clip_path()), str(second), "--realtime") as port:
            driver.get(f"http://127.0.0.1:{port}/")
            deadline, tiles = time.monotonic() + 15, []
            while time.monotonic() < deadline and len(tiles) < 2:
                time.sleep(0.2)
                tiles = driver.execute_script("return [...document.querySelectorAll('section.tile')].map(t => t.dataset.source)")
            assert sorted(tiles) == sorted([str(demo_clip_path()), str(second)])
    finally:
        driver.quit()


@contextlib.contextmanager
def serving(*sources: str):
    """`edge-run --serve` on a free port over looping sources (a flag among them is passed on)."""
    port = free_port()
    arguments = [part for source in sources for part in (["--source", source] if not source.startswith("--") else [source])]
    process = subprocess.Popen([str(EDGE_RUN), *arguments, "--loop", "--detector", "haar", "--serve", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until_serving(port, process)
        yield port
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
