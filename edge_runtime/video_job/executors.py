"""Where a job's chunks run: a pool of local worker processes, or actors on a Ray cluster.

Both hold one `EmotionDetector` per worker (the model is loaded once per worker, not per
chunk) and run the same `chunks.run_chunk`, so their records are the same. The job asks an
executor for free slots, submits chunks, and collects what finished; a worker that dies (killed,
out of memory) fails the chunks it held, and the executor carries on with fresh workers.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import signal
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from edge_runtime.video_job.chunks import Chunk, ChunkResult, run_chunk

WORKER_DIED = "a worker process died while running it (killed, or out of memory)"

_worker_detector = None
_worker_progress = None


def _quiet_worker_signals() -> None:
    # Ctrl-C reaches the whole process group; the job decides what its workers do, so a worker
    # does not turn it into a traceback of its own. SIGTERM from the job ends a worker at once.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)


def _load_worker_detector(config):
    import cv2

    from edge_runtime.pipeline.runner import build_detector

    cv2.setNumThreads(1)  # one worker per core: OpenCV's own threads would only contend
    return build_detector(config)


def _init_local_worker(config, progress_queue) -> None:
    global _worker_detector, _worker_progress
    _quiet_worker_signals()
    _worker_progress = progress_queue
    _worker_detector = _load_worker_detector(config)


def _run_local_chunk(chunk: Chunk, out: Path) -> ChunkResult:
    return run_chunk(_worker_detector, chunk, out, progress=_worker_progress.put)


class LocalExecutor:
    """Worker processes on this machine (started fresh, not forked from a process with threads;
    the processes start, and load the model, with the first chunks)."""

    reports_frames = True  # workers report frames as they go

    def __init__(self, config, workers: int, out: Path) -> None:
        self.config, self.workers, self.out = config, workers, out
        self._context = multiprocessing.get_context("spawn")
        self._progress = self._context.Queue()
        self._pool: ProcessPoolExecutor | None = None
        self._running: dict[Future, Chunk] = {}
        self._lost: list[Chunk] = []  # chunks of a pool found broken at a submit, reported by collect

    def _ensure_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(self.workers, mp_context=self._context, initializer=_init_local_worker,
                                             initargs=(self.config, self._progress))
        return self._pool

    def free_slots(self) -> int:
        # Two chunks queued per worker: none waits for the job to hand it the next one.
        return max(0, 2 * self.workers - len(self._running))

    def submit(self, chunk: Chunk) -> None:
        try:
            future = self._ensure_pool().submit(_run_local_chunk, chunk, self.out)
        except BrokenProcessPool:
            # A worker died since the last collect: what the pool held is lost, a new pool takes over.
            self._lost.extend(self._running.values())
            self._running.clear()
            self._shut(kill=True)
            future = self._ensure_pool().submit(_run_local_chunk, chunk, self.out)
        self._running[future] = chunk

    def collect(self, timeout: float) -> list[tuple[Chunk, ChunkResult | BaseException]]:
        """The chunks that finished (with their result or error), waiting up to `timeout` s."""
        finished: list[tuple[Chunk, ChunkResult | BaseException]] = [(chunk, RuntimeError(WORKER_DIED)) for chunk in self._lost]
        self._lost.clear()
        if not self._running:
            return finished
        done, _ = wait(list(self._running), timeout=timeout, return_when=FIRST_COMPLETED)
        broken = False
        for future in done:
            chunk = self._running.pop(future)
            error = future.exception()
            if isinstance(error, BrokenProcessPool):
                broken = True
                error = RuntimeError(WORKER_DIED)
            finished.append((chunk, error if error is not None else future.result()))
        if broken:
            # Every chunk of a broken pool fails with it; the next submit starts a new pool.
            for chunk in self._running.values():
                finished.append((chunk, RuntimeError(WORKER_DIED)))
            self._running.clear()
            self._shut(kill=True)
        return finished

    def frames_done(self) -> int:
        """Frames the workers reported since the last call (for the progress bar)."""
        total = 0
        while True:
            try:
                total += self._progress.get_nowait()
            except queue.Empty:
                return total

    def in_flight(self) -> list[Chunk]:
        return list(self._running.values()) + self._lost

    def close(self, kill: bool = False) -> None:
        self._shut(kill)
        self._running.clear()

    def _shut(self, kill: bool) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        if kill:
            # An interrupted job stops its workers now rather than after their chunks: the
            # standard library has no public call for it before Python 3.14.
            for process in list(getattr(pool, "_processes", {}).values()):
                if process.is_alive():
                    process.terminate()
        pool.shutdown(wait=True, cancel_futures=True)


class _RayWorker:
    """One Ray actor: one EmotionDetector for every chunk it is given."""

    def __init__(self, config) -> None:
        _quiet_worker_signals()
        self.detector = _load_worker_detector(config)

    def run(self, chunk: Chunk, out: Path) -> ChunkResult:
        return run_chunk(self.detector, chunk, out)


class RayExecutor:
    """Ray actors, one per worker: on a cluster (`address`: host:port or `auto`) or on a Ray
    instance started for the job (`local`).

    Raises:
        RuntimeError: Ray is not installed, or the cluster cannot be joined (one line).
    """

    reports_frames = False  # progress comes per finished chunk

    def __init__(self, config, workers: int | None, out: Path, address: str) -> None:
        if address == "local":
            # A Ray instance of the job's own is one node, so it keeps to loopback: by default
            # Ray advertises the network interface's address, inviting other machines in. The
            # variable's name speaks of Windows and macOS, where loopback is Ray's default, but
            # every system reads it (when Ray is imported, hence before the import).
            os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        try:
            import ray
        except ImportError:
            from edge_runtime.model_files.formats import install_hint

            raise RuntimeError(f"--ray needs Ray: {install_hint('cluster')}") from None
        self.ray = ray
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no usage report leaves the machine
        self._started = address == "local"
        try:
            if self._started:
                ray.init(num_cpus=workers or os.cpu_count() or 1, include_dashboard=False, log_to_driver=False,
                         configure_logging=False)
            else:
                ray.init(address=address, log_to_driver=False, configure_logging=False)
        except Exception as error:  # noqa: BLE001 - Ray raises many kinds; the user needs one line
            raise RuntimeError(f"--ray {address}: cannot start or join Ray ({str(error).splitlines()[0]})") from None
        count = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        actor = ray.remote(num_cpus=1)(_RayWorker)
        self.config, self.out, self.workers = config, out, count
        self._actor_class = actor
        self._idle = [actor.remote(config) for _ in range(count)]
        self._running: dict[object, tuple[object, Chunk]] = {}

    def free_slots(self) -> int:
        return len(self._idle)

    def submit(self, chunk: Chunk) -> None:
        actor = self._idle.pop()
        self._running[actor.run.remote(chunk, self.out)] = (actor, chunk)

    def collect(self, timeout: float) -> list[tuple[Chunk, ChunkResult | BaseException]]:
        if not self._running:
            return []
        ready, _ = self.ray.wait(list(self._running), num_returns=1, timeout=timeout)
        finished = []
        for ref in ready:
            actor, chunk = self._running.pop(ref)
            try:
                finished.append((chunk, self.ray.get(ref)))
                self._idle.append(actor)
            except self.ray.exceptions.RayTaskError as error:
                finished.append((chunk, error.cause if isinstance(error.cause, BaseException) else RuntimeError(str(error))))
                self._idle.append(actor)
            except self.ray.exceptions.RayActorError:
                finished.append((chunk, RuntimeError(WORKER_DIED)))
                self._idle.append(self._actor_class.remote(self.config))  # a fresh actor in its place
        return finished

    def frames_done(self) -> int:
        return 0

    def in_flight(self) -> list[Chunk]:
        return [chunk for _, chunk in self._running.values()]

    def close(self, kill: bool = False) -> None:
        for actor, _ in self._running.values():
            self.ray.kill(actor)
        for actor in self._idle:
            self.ray.kill(actor)
        self._running.clear()
        self._idle = []
        if self._started:
            self.ray.shutdown()
