"""Third-party detector files: found on disk, in the cache, or fetched once and verified.

A detector file is resolved in this order: the path the user passes (`--detector-model`); the
cache (`$EDGE_EMOTION_CACHE/models`, default `~/.cache/edge-emotion/models`); a download from
the pinned upstream address (or `$EDGE_EMOTION_MODEL_MIRROR/<file name>`), checked against the
pinned SHA-256 and renamed into the cache only when it matches. A failed download keeps
nothing and leaves a note in the cache, so a device without network does not wait for the
network at every start: `auto` skips the download for a day after a failure, and
`edge-run --fetch-models` retries at once.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from edge_runtime.detectors.base import DetectorError
from edge_runtime.detectors.table import ModelFile
from edge_runtime.outputs.atomic import atomic_path

CACHE_ENV = "EDGE_EMOTION_CACHE"
MIRROR_ENV = "EDGE_EMOTION_MODEL_MIRROR"
# A download that has not finished by then is abandoned: on a device without network a
# failed fetch must cost seconds, not the minutes a stalled TCP connection can take.
DOWNLOAD_TIMEOUT_S = 8.0
# After a failed download, `auto` does not try again for this long (`--fetch-models` does).
RETRY_AFTER_S = 24 * 3600


def cache_dir() -> Path:
    """Where fetched model files live: `$EDGE_EMOTION_CACHE/models` or `~/.cache/edge-emotion/models`."""
    root = os.environ.get(CACHE_ENV) or os.path.join(os.path.expanduser("~"), ".cache", "edge-emotion")
    return Path(root) / "models"


def cached_path(model_file: ModelFile) -> Path:
    return cache_dir() / model_file.file_name


def manual_copy_hint(model_file: ModelFile) -> str:
    """How to give a device without network `model_file` by hand: where the copy goes (the
    resolved cache path) or the option that names a copy elsewhere."""
    target = cached_path(model_file).absolute()
    return f"without network, copy {model_file.file_name} (from {model_file.url}) to {target}, or pass --detector-model PATH"


def _failure_note(model_file: ModelFile) -> Path:
    return cache_dir() / f"{model_file.file_name}.unavailable.json"


def download_url(model_file: ModelFile) -> str:
    """The pinned upstream address, or the same file name under `$EDGE_EMOTION_MODEL_MIRROR`."""
    mirror = os.environ.get(MIRROR_ENV, "").strip()
    return f"{mirror.rstrip('/')}/{model_file.file_name}" if mirror else model_file.url


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def verify(path: Path, model_file: ModelFile) -> None:
    """Checks a copy of `model_file` against its pinned hash.

    Raises:
        DetectorError: when the bytes differ (a damaged or different file), saying how to fix it.
    """
    digest = sha256_of(path)
    if digest != model_file.sha256:
        raise DetectorError(
            f"{path}: SHA-256 {digest[:12]}... is not the pinned {model_file.sha256[:12]}... of {model_file.file_name} "
            "(damaged or another version); delete it and run 'edge-run --fetch-models'"
        )


def recent_failure(model_file: ModelFile) -> str | None:
    """The reason of a download failure less than RETRY_AFTER_S ago, or None."""
    note = _failure_note(model_file)
    try:
        data = json.loads(note.read_text(encoding="utf-8"))
        if time.time() - float(data["time"]) < RETRY_AFTER_S:
            return str(data.get("error", "download failed"))
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None


def _remember_failure(model_file: ModelFile, error: str) -> None:
    try:
        note = _failure_note(model_file)
        note.parent.mkdir(parents=True, exist_ok=True)
        note.write_text(json.dumps({"time": time.time(), "error": error}) + "\n", encoding="utf-8")
    except OSError:
        pass  # a read-only cache only means the next start tries again


def _forget_failure(model_file: ModelFile) -> None:
    try:
        _failure_note(model_file).unlink()
    except OSError:
        pass


def _read_url(url: str, limit: int, timeout_s: float) -> bytes:
    """The body at `url`, read on a daemon thread so that a hung DNS lookup or connection
    cannot hold the caller past `timeout_s`."""
    result: dict[str, object] = {}

    def read() -> None:
        try:
            with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310 - pinned https or a user's mirror
                result["body"] = response.read(limit + 1)
        except Exception as error:  # reported to the caller below
            result["error"] = error

    worker = threading.Thread(target=read, name="model-download", daemon=True)
    worker.start()
    worker.join(timeout_s)
    error = result.get("error")
    # The socket's own time-out and the join's can fire first: either way, one message.
    if worker.is_alive() or isinstance(error, TimeoutError) or isinstance(getattr(error, "reason", None), TimeoutError):
        raise DetectorError(f"{url}: no complete answer within {timeout_s:.0f} s")
    if error is not None:
        if isinstance(error, urllib.error.HTTPError):
            reason = f"HTTP {error.code} {error.reason}"
        else:
            reason = getattr(error, "reason", None) or error
        raise DetectorError(f"{url}: download failed ({reason})")
    return result["body"]  # type: ignore[return-value]


def fetch(model_file: ModelFile, timeout_s: float = DOWNLOAD_TIMEOUT_S) -> Path:
    """Downloads `model_file` into the cache, verified; nothing is kept unless the hash matches.

    Returns:
        The cached path.

    Raises:
        DetectorError: one line saying what failed (network, size, hash, cache folder).
    """
    url = download_url(model_file)
    target = cached_path(model_file)
    try:
        body = _read_url(url, 4 * model_file.size, timeout_s)
        if len(body) > 4 * model_file.size:
            raise DetectorError(f"{url}: answer is larger than {4 * model_file.size} bytes; not {model_file.file_name}")
        digest = hashlib.sha256(body).hexdigest()
        if digest != model_file.sha256:
            raise DetectorError(
                f"{url}: downloaded {len(body)} bytes with SHA-256 {digest[:12]}..., not the pinned "
                f"{model_file.sha256[:12]}...; nothing was kept"
            )
        try:
            with atomic_path(target) as tmp:
                tmp.write_bytes(body)
        except OSError as error:
            raise DetectorError(f"{target.parent}: cannot write the cache ({error.strerror}); set {CACHE_ENV}") from None
    except DetectorError as error:
        # The note keeps the bare reason: `auto` quotes it later with its own advice.
        _remember_failure(model_file, str(error))
        raise DetectorError(f"{error}; {manual_copy_hint(model_file)}") from None
    _forget_failure(model_file)
    return target


def resolve(model_file: ModelFile, explicit: str | os.PathLike | None = None, download: bool = True) -> Path:
    """The path of a usable copy of `model_file`: `explicit`, else the cache, else a download.

    Args:
        model_file: the pinned file.
        explicit: a path the user gave; used as it is (another version of the model is the
            user's choice), it only has to exist.
        download: fetch when the cache has no copy (False: fail instead).

    Raises:
        DetectorError: a missing explicit file, a damaged cached copy, or a failed download.
    """
    if explicit is not None:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise DetectorError(f"{path}: no such detector model file; pass the path of {model_file.file_name}")
        return path
    cached = cached_path(model_file)
    if cached.is_file():
        verify(cached, model_file)
        return cached
    if not download:
        raise DetectorError(
            f"{model_file.file_name} is not in {cached.parent}; fetch it with 'edge-run --fetch-models' or, "
            f"{manual_copy_hint(model_file)}"
        )
    return fetch(model_file)
