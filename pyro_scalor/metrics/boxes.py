"""Box helpers shared by the metrics and the pictures: conversion, validation, IoU, centres.

Boxes are pixel coordinates ``(x_min, y_min, x_max, y_max)`` with the max exclusive. A
sequence carries ``boxes (T, N, 4)``, ``ids (T, N)`` (or ``(N,)``, broadcast over time) and
``valid (T, N)`` bool; batched versions add a leading ``B``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["to_numpy", "iou_matrix", "box_centers", "check_tracks", "check_flags"]


def to_numpy(x: Any, name: str) -> np.ndarray:
    """Return ``x`` (numpy array, torch tensor, list) as a numpy array; ``name`` is for errors."""
    if x is None:
        raise TypeError(f"{name} is None; expected an array or tensor")
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # torch.Tensor without importing torch
        x = x.detach().cpu()
        if str(getattr(x, "dtype", "")) == "torch.bfloat16":  # numpy has no bfloat16
            x = x.float()
        x = x.numpy()
    try:
        return np.asarray(x)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} could not be converted to an array: {err}") from err


def iou_matrix(a: Any, b: Any) -> np.ndarray:
    """Intersection over union of every box in ``a (N, 4)`` with every box in ``b (M, 4)``.

    Returns a float64 ``(N, M)`` array; a pair whose union is empty (two empty boxes) has IoU 0.
    Boxes with ``x_max < x_min`` (or ``y``) count as empty.
    """
    a = to_numpy(a, "a").astype(np.float64, copy=False)
    b = to_numpy(b, "b").astype(np.float64, copy=False)
    for name, arr in (("a", a), ("b", b)):
        if arr.ndim != 2 or arr.shape[1] != 4:
            raise ValueError(
                f"iou_matrix: {name} must have shape (num_boxes, 4) as "
                f"(x_min, y_min, x_max, y_max); got {arr.shape}"
            )
    if a.shape[0] == 0 or b.shape[0] == 0:
        return np.zeros((a.shape[0], b.shape[0]), dtype=np.float64)
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    iw = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    ih = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    inter = np.clip(iw, 0, None) * np.clip(ih, 0, None)
    union = area_a[:, None] + area_b[None, :] - inter
    out = np.zeros_like(inter)
    np.divide(inter, union, out=out, where=union > 0)
    return out


def box_centers(boxes: np.ndarray) -> np.ndarray:
    """Centres ``(..., 2)`` as ``(x, y)`` in pixels of boxes ``(..., 4)``."""
    boxes = np.asarray(boxes, dtype=np.float64)
    return np.stack(
        [(boxes[..., 0] + boxes[..., 2]) / 2.0, (boxes[..., 1] + boxes[..., 3]) / 2.0], axis=-1
    )


def _shape_str(dims: tuple[str, ...], sizes: dict[str, int]) -> str:
    letters = ", ".join(dims)
    known = [sizes.get(d) for d in dims]
    if all(isinstance(k, int) for k in known):
        return f"({letters}) = {tuple(known)}"
    return f"({letters})"


def check_flags(flags: Any, name: str, shape: tuple[int, ...], dims: tuple[str, ...]) -> np.ndarray:
    """Return ``flags`` as a bool array of exactly ``shape``; accepts bool or 0/1 numbers.

    ``dims`` names the axes (e.g. ``("B", "T", "N")``) for the error message.
    """
    arr = to_numpy(flags, name)
    if arr.shape != tuple(shape):
        raise ValueError(
            f"{name} must have shape ({', '.join(dims)}) = {tuple(shape)}; got {arr.shape}"
        )
    if arr.dtype == np.bool_:
        return arr
    if not np.issubdtype(arr.dtype, np.number):
        raise TypeError(f"{name} must be boolean; got dtype {arr.dtype}")
    if arr.size and not np.isin(arr, (0, 1)).all():
        raise ValueError(
            f"{name} must be boolean (or 0/1); got values other than 0 and 1 "
            "(threshold probabilities first, e.g. z_pres > 0.5)"
        )
    return arr.astype(bool)


def check_tracks(
    boxes: Any,
    ids: Any,
    valid: Any,
    *,
    name: str,
    batched: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate one set of tracks and return ``(boxes float64, ids int64, valid bool)``.

    With ``batched`` the expected shapes are ``boxes (B, T, N, 4)``, ids ``(B, T, N)``,
    ``(B, N)`` or ``(N,)``, valid ``(B, T, N)`` (``None`` means all valid); otherwise the
    same without ``B``. ``name`` prefixes the argument names in error messages (e.g. ``"gt"`` gives
    ``gt_boxes``; an empty name gives ``boxes``). Boxes of valid entries must be finite.
    """
    lead = ("B", "T", "N") if batched else ("T", "N")
    prefix = f"{name}_" if name else ""
    bname, iname, vname = f"{prefix}boxes", f"{prefix}ids", f"{prefix}valid"
    boxes = to_numpy(boxes, bname)
    if boxes.ndim != len(lead) + 1 or boxes.shape[-1] != 4:
        raise ValueError(
            f"{bname} must have shape ({', '.join(lead)}, 4) with boxes as "
            f"(x_min, y_min, x_max, y_max); got {boxes.shape}"
        )
    if not np.issubdtype(boxes.dtype, np.number) or boxes.dtype == np.bool_:
        raise TypeError(f"{bname} must be numeric; got dtype {boxes.dtype}")
    boxes = boxes.astype(np.float64, copy=False)
    sizes = dict(zip(lead, boxes.shape[:-1]))
    full = boxes.shape[:-1]

    ids = to_numpy(ids, iname)
    per_track = (sizes["B"], sizes["N"]) if batched else (sizes["N"],)
    if ids.shape == full:
        pass
    elif ids.shape == per_track:
        ids = np.broadcast_to(np.expand_dims(ids, -2), full)
    elif batched and ids.shape == (sizes["N"],):  # the same ids for every sequence
        ids = np.broadcast_to(ids, full)
    else:
        alt = ("B", "N") if batched else ("N",)
        raise ValueError(
            f"{iname} must have shape {_shape_str(lead, sizes)} or {_shape_str(alt, sizes)} "
            f"to match {bname} {boxes.shape}; got {ids.shape}"
        )
    if ids.dtype == np.bool_ or not np.issubdtype(ids.dtype, np.number):
        raise TypeError(f"{iname} must hold integer track ids; got dtype {ids.dtype}")
    if not np.issubdtype(ids.dtype, np.integer):
        if ids.size and not (np.isfinite(ids).all() and (ids == np.round(ids)).all()):
            raise ValueError(f"{iname} must hold integer track ids; got non-integer values")
    ids = ids.astype(np.int64)

    if valid is None:
        valid = np.ones(full, dtype=bool)
    else:
        valid = check_flags(valid, vname, full, lead)

    if valid.any() and not np.isfinite(boxes[valid]).all():
        raise ValueError(f"{bname} has NaN or infinite coordinates at entries marked valid")
    return boxes, ids, valid
