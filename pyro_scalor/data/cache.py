"""Disk cache of generated splits, keyed by the generator version and the full config.

Layout: ``<cache_dir>/<preset name>/<split>-n<N>-<key>/`` holding ``video.npy`` (uint8),
``boxes.npy``, ``ids.npy``, ``visible.npy``, ``meta.json`` and the ``COMPLETE`` marker. A split
is generated into a hidden temporary directory, the marker is written last and the directory is
renamed into place, so a reader never sees a partial entry. Arrays load as read-only memory maps.
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
ARRAYS = ("video", "boxes", "ids", "visible")


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


def read_entry(path: Path) -> dict[str, np.ndarray] | None:
    """The arrays of a complete cache entry as read-only memory maps, or None if incomplete."""
    if not (path / MARKER).is_file():
        return None
    meta = json.loads((path / META).read_text())
    if meta.get("key") != path.name.rsplit("-", 1)[-1]:
        logger.warning("cache entry %s has a mismatched key; ignoring it", path)
        return None
    return {name: np.load(path / f"{name}.npy", mmap_mode="r") for name in ARRAYS}


def write_entry(
    config: DataConfig, split: str, num_sequences: int, path: Path, *, progress: bool = False
) -> float:
    """Generate the split into a temporary directory and rename it to ``path``.

    Returns the seconds spent generating. A stale incomplete directory at ``path`` is replaced;
    if another process completes ``path`` first, its entry is kept and ours discarded.
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
        meta = {
            "key": path.name.rsplit("-", 1)[-1],
            "generator_version": GENERATOR_VERSION,
            "config": config.to_dict(),
            "split": split,
            "num_sequences": num_sequences,
            "seconds": seconds,
        }
        (tmp / META).write_text(json.dumps(meta, indent=2))
        (tmp / MARKER).write_text("ok\n")
        if path.exists() and not (path / MARKER).is_file():
            logger.warning("replacing incomplete cache entry %s", path)
            shutil.rmtree(path)
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
    caching them first when no complete entry exists."""
    n = config.num_sequences(split) if num_sequences is None else num_sequences
    if n < 1:
        raise ValueError(f"num_sequences must be >= 1, got {n}")
    path = cache_path(config, split, n, cache_dir)
    arrays = read_entry(path)
    if arrays is None:
        logger.info("no cache entry at %s; generating", path)
        seconds = write_entry(config, split, n, path, progress=progress)
        logger.info("generated %d %s sequences of %s in %.1f s", n, split, config.name, seconds)
        arrays = read_entry(path)
        if arrays is None:
            raise RuntimeError(f"cache entry {path} is incomplete right after writing it")
    else:
        logger.info("using cached %s", path)
    return arrays, path
