"""The one JSON writer: metrics, reports and summaries as indented JSON files.

Values are made plain before writing: numpy and torch scalars become Python numbers, arrays and
tensors become (nested) lists, tuples become lists, paths become strings, and NaN or infinite
floats become ``null`` (JSON has no NaN). The file is written to a temporary name and renamed,
so a reader (or a killed writer) never sees half a file.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

__all__ = ["plain", "save_json"]


def plain(value: Any) -> Any:
    """``value`` with every nested number, array, tensor and path made JSON-ready (see above)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if hasattr(value, "detach") and hasattr(value, "tolist"):  # torch.Tensor
        return plain(value.detach().cpu().tolist())
    if hasattr(value, "tolist") and hasattr(value, "dtype"):  # numpy array or scalar
        return plain(value.tolist())
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def save_json(data: Any, path: str | os.PathLike, *, sort_keys: bool = True) -> Path:
    """Write ``data`` made :func:`plain` to ``path`` as indented JSON; returns the path.

    Creates missing parent folders; the write is atomic (temporary file, then rename).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(plain(data), indent=2, sort_keys=sort_keys, allow_nan=False) + "\n"
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(text)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
