"""Tracks in the MOTChallenge text format, which standard tracking tools read and score.

One line per present object and frame: ``frame,id,x,y,w,h,conf,-1,-1,-1`` with frames counted
from 1, the box's top-left corner ``(x, y)`` and size ``(w, h)`` in pixels, and ``conf`` the
object's confidence (here its presence probability). The last three fields are the 3-D world
coordinates, unused in 2-D tracking.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from pyro_scalor.metrics.boxes import check_tracks, to_numpy

__all__ = ["load_mot", "mot_rows", "save_mot"]


def mot_rows(boxes: Any, ids: Any, valid: Any, confidence: Any) -> np.ndarray:
    """The MOTChallenge rows of one sequence as float64 (N, 10), sorted by frame then id.

    Takes pixel boxes (T, K, 4) as ``(x_min, y_min, x_max, y_max)``, ids and valid (T, K) and
    confidence (T, K); only valid (present) objects get a row.
    """
    boxes, ids, valid = check_tracks(boxes, ids, valid, name="", batched=False)
    conf = to_numpy(confidence, "confidence").astype(np.float64)
    if conf.shape != valid.shape:
        raise ValueError(f"confidence has shape {conf.shape}; expected {valid.shape} (T, K)")
    t, k = np.nonzero(valid)
    b = boxes[t, k].astype(np.float64)
    rows = np.column_stack(
        [t + 1, ids[t, k], b[:, 0], b[:, 1], b[:, 2] - b[:, 0], b[:, 3] - b[:, 1], conf[t, k]]
    )
    rows = np.concatenate([rows, np.full((len(rows), 3), -1.0)], axis=1)
    return rows[np.lexsort((rows[:, 1], rows[:, 0]))]


def save_mot(rows: np.ndarray, path: str | os.PathLike) -> Path:
    """Write :func:`mot_rows` to ``path`` (creating parent folders); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        f"{int(r[0])},{int(r[1])},{r[2]:.2f},{r[3]:.2f},{r[4]:.2f},{r[5]:.2f},{r[6]:.4f},-1,-1,-1"
        for r in rows
    ]
    path.write_text("".join(line + "\n" for line in lines))
    return path


def load_mot(path: str | os.PathLike) -> np.ndarray:
    """A MOTChallenge text file as float64 (N, 10) (an empty file gives (0, 10))."""
    text = Path(path).read_text().strip()
    if not text:
        return np.zeros((0, 10))
    return np.loadtxt(text.splitlines(), delimiter=",", ndmin=2)
