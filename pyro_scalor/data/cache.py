"""Disk cache of generated splits, keyed by the generator version and the full config, that
checks itself.

Layout: ``<cache_dir>/<preset name>/<split>-n<N>-<key>/`` holding ``video.npy`` (uint8),
``boxes.npy``, ``ids.npy``, ``visible.npy``, ``meta.json`` and the ``COMPLETE`` marker. A split
is generated into a hidden temporary folder ``.<entry>.tmp-<pid>-<random>``, the marker is
written last and the folder is renamed into place, so a reader never sees a partial entry.
Arrays load as read-only memory maps.

Verification: ``meta.json`` records every array file's size and SHA-256. Opening an entry checks
the sizes every time and the checksums whenever a file's (size, modification time) differs from
the one recorded in ``verified.json`` after its last successful check; so the full hash (about
0.6 s for the 983 MB default training split) runs once per file version, not on every open. A
damaged entry (missing, truncated, empty or rewritten file, unreadable metadata, no checksums)
is named in a warning and rebuilt: generation is deterministic. Temporary folders of writers that
were killed are removed on the next load.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from pathlib import Path

import numpy as np

from pyro_scalor.data.config import DataConfig, config_json
from pyro_scalor.data.generator import GENERATOR_VERSION, generate_split, split_shapes

logger = logging.getLogger(__name__)

CACHE_ENV = "PYRO_SCALOR_CACHE"
MARKER = "COMPLETE"
META = "meta.json"
VERIFIED = "verified.json"
ARRAYS = ("video", "boxes", "ids", "visible")
_CHUNK = 8 << 20


class CacheEntryError(ValueError):
    """A complete cache entry whose files do not match what its metadata recorded."""

    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"cache entry {path} is damaged ({reason})")


def process_alive(pid: int) -> bool:
    """Whether a process with id ``pid`` exists (on this machine)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by someone else
        return True
    except OSError:
        return False
    return True


def default_cache_dir() -> Path:
    """``$PYRO_SCALOR_CACHE`` if set, else ``~/.cache/pyro-scalor``."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "pyro-scalor"


def cache_key(config: DataConfig, split: str, num_sequences: int) -> str:
    """Hex digest of the generator version, the full config, the split and the count."""
    text = json.dumps(
        {
            "version": GENERATOR_VERSION,
            "config": json.loads(config_json(config)),
            "split": split,
            "num_sequences": num_sequences,
        },
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def cache_path(
    config: DataConfig, split: str, num_sequences: int, cache_dir: str | Path | None = None
) -> Path:
    """Directory of the cache entry for ``num_sequences`` sequences of ``split``."""
    root = default_cache_dir() if cache_dir is None else Path(cache_dir).expanduser()
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in config.name) or "custom"
    key = cache_key(config, split, num_sequences)
    return root / safe / f"{split}-n{num_sequences}-{key}"


# ------------------------------------------------------------------------------------------
# checksums
def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _stamp(path: Path) -> list[int]:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns]


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)


def _record_verified(path: Path, stamps: dict[str, list[int]]) -> None:
    """Remember that the files had these (size, mtime) when their checksums last matched."""
    try:
        _write_json(path / VERIFIED, stamps)
    except OSError as err:  # a read-only cache still works; it is hashed on every open
        logger.debug("cannot record verification of %s: %s", path, err)


def verify_entry(path: Path) -> None:
    """Check a complete entry's files against its metadata; raises :class:`CacheEntryError`.

    Sizes are checked every time, checksums when a file changed since its last verification.
    """
    try:
        meta = json.loads((path / META).read_text())
    except (OSError, ValueError) as err:
        raise CacheEntryError(path, f"{META} is unreadable: {err}") from None
    files = meta.get("files") if isinstance(meta, dict) else None
    if not isinstance(files, dict) or set(files) != {f"{n}.npy" for n in ARRAYS}:
        raise CacheEntryError(path, f"{META} records no checksums")
    try:
        verified = json.loads((path / VERIFIED).read_text())
    except (OSError, ValueError):
        verified = {}
    stamps = {}
    for name, want in files.items():
        file = path / name
        if not file.is_file():
            raise CacheEntryError(path, f"{name} is missing")
        stamps[name] = _stamp(file)
        if stamps[name][0] != want["size"]:
            raise CacheEntryError(
                path, f"{name} has {stamps[name][0]} bytes, {want['size']} were written"
            )
    changed = [name for name in files if verified.get(name) != stamps[name]]
    for name in changed:
        if file_sha256(path / name) != files[name]["sha256"]:
            raise CacheEntryError(path, f"{name} does not match its recorded checksum")
    if changed:
        _record_verified(path, stamps)


# ------------------------------------------------------------------------------------------
def read_entry(path: Path) -> dict[str, np.ndarray] | None:
    """The arrays of a complete cache entry as read-only memory maps, or None if incomplete.

    Raises :class:`CacheEntryError` if the entry is complete but damaged.
    """
    if not (path / MARKER).is_file():
        return None
    verify_entry(path)
    meta = json.loads((path / META).read_text())
    if meta.get("key") != path.name.rsplit("-", 1)[-1]:
        logger.warning("cache entry %s has a mismatched key; ignoring it", path)
        return None
    try:
        return {name: np.load(path / f"{name}.npy", mmap_mode="r") for name in ARRAYS}
    except (OSError, ValueError, EOFError) as err:
        raise CacheEntryError(path, f"an array does not load: {err}") from None


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Delete the hidden folders ``.<entry>.tmp-<pid>-...`` (being written) and
    ``.<entry>.discard-<pid>-...`` (being deleted) in ``folder`` whose process is gone; returns
    the deleted paths."""
    removed = []
    if not folder.is_dir():
        return removed
    for tmp in folder.glob(".*"):
        tail = tmp.name.rsplit(".tmp-", 1)[-1] if ".tmp-" in tmp.name else None
        if tail is None and ".discard-" in tmp.name:
            tail = tmp.name.rsplit(".discard-", 1)[-1]
        pid_text = (tail or "").split("-", 1)[0]
        if not tmp.is_dir() or not pid_text.isdigit():
            continue
        pid = int(pid_text)
        if pid == os.getpid() or process_alive(pid):
            continue
        shutil.rmtree(tmp, ignore_errors=True)
        logger.warning("removed %s, left by a cache writer that was killed", tmp)
        removed.append(tmp)
    return removed


def _discard(path: Path) -> None:
    """Move a (damaged or incomplete) entry aside and delete it."""
    aside = path.parent / f".{path.name}.discard-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return
    shutil.rmtree(aside, ignore_errors=True)


def _entry_is_good(path: Path) -> bool:
    try:
        return read_entry(path) is not None
    except CacheEntryError:
        return False


def write_entry(
    config: DataConfig, split: str, num_sequences: int, path: Path, *, progress: bool = False
) -> float:
    """Generate the split into a temporary directory and rename it to ``path``.

    Returns the seconds spent generating. An incomplete or damaged entry at ``path`` is
    replaced; if another process completes a good ``path`` first, its entry is kept and ours
    discarded.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        out = {
            name: np.lib.format.open_memmap(
                tmp / f"{name}.npy", mode="w+", dtype=dtype, shape=shape
            )
            for name, (shape, dtype) in split_shapes(config, num_sequences).items()
        }
        start = time.perf_counter()
        generate_split(config, split, num_sequences, out=out, progress=progress)
        seconds = time.perf_counter() - start
        for array in out.values():
            array.flush()
        del out
        files = {
            f"{name}.npy": {
                "size": (tmp / f"{name}.npy").stat().st_size,
                "sha256": file_sha256(tmp / f"{name}.npy"),
            }
            for name in ARRAYS
        }
        meta = {
            "key": path.name.rsplit("-", 1)[-1],
            "generator_version": GENERATOR_VERSION,
            "config": config.to_dict(),
            "split": split,
            "num_sequences": num_sequences,
            "seconds": seconds,
            "files": files,
        }
        (tmp / META).write_text(json.dumps(meta, indent=2))
        (tmp / VERIFIED).write_text(json.dumps({n: _stamp(tmp / n) for n in files}))
        (tmp / MARKER).write_text("ok\n")
        if path.exists() and not _entry_is_good(path):
            logger.info("replacing incomplete or damaged cache entry %s", path)
            _discard(path)
        try:
            os.rename(tmp, path)
        except OSError:
            if not (path / MARKER).is_file():
                raise
            logger.info("another process completed %s first; using its entry", path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return seconds


def load_or_generate(
    config: DataConfig,
    split: str,
    num_sequences: int | None = None,
    *,
    cache_dir: str | Path | None = None,
    progress: bool = False,
) -> tuple[dict[str, np.ndarray], Path]:
    """The split's arrays (read-only memory maps) and their cache directory, generating and
    caching them first when no complete entry exists, and again when the entry is damaged."""
    n = config.num_sequences(split) if num_sequences is None else num_sequences
    if n < 1:
        raise ValueError(f"num_sequences must be >= 1, got {n}")
    path = cache_path(config, split, n, cache_dir)
    remove_stale_temporaries(path.parent)
    try:
        arrays = read_entry(path)
    except CacheEntryError as err:
        logger.warning("%s; rebuilding it", err)
        arrays = None
    if arrays is None:
        logger.info("no usable cache entry at %s; generating", path)
        seconds = write_entry(config, split, n, path, progress=progress)
        logger.info("generated %d %s sequences of %s in %.1f s", n, split, config.name, seconds)
        arrays = read_entry(path)
        if arrays is None:
            raise RuntimeError(f"cache entry {path} is incomplete right after writing it")
    else:
        logger.info("using cached %s", path)
    return arrays, path
