"""Complex moving background: a smooth, periodic colour texture that translates over time."""

from __future__ import annotations

import numpy as np

#: Number of sinusoidal gratings summed into one texture, and their largest integer frequency
#: (cycles per view width): low frequencies give colour blobs, higher ones stripes.
NUM_GRATINGS = 4
MAX_FREQUENCY = 3
#: The texture's values are mapped into this range, darker than the objects' colours.
LEVELS = (0.08, 0.6)


def texture(rng: np.random.Generator, size: int) -> np.ndarray:
    """A random periodic colour texture, float32 (size, size, 3) with values in ``LEVELS``.

    It is a sum of ``NUM_GRATINGS`` plane waves with integer frequencies, each with its own
    random colour, so shifting it by any number of pixels (mod ``size``) stays seamless.
    """
    coords = np.arange(size) / size
    x, y = np.meshgrid(coords, coords)
    out = np.zeros((size, size, 3))
    for _ in range(NUM_GRATINGS):
        fx, fy = 0, 0
        while fx == 0 and fy == 0:
            fx, fy = rng.integers(-MAX_FREQUENCY, MAX_FREQUENCY + 1, size=2)
        phase = rng.uniform(0.0, 2.0 * np.pi)
        colour = rng.uniform(0.0, 1.0, size=3)
        out += np.cos(2.0 * np.pi * (fx * x + fy * y) + phase)[..., None] * colour
    lo, hi = LEVELS
    span = max(out.max() - out.min(), 1e-6)
    return (lo + (hi - lo) * (out - out.min()) / span).astype(np.float32)


def moving_background(
    rng: np.random.Generator, size: int, seq_len: int, min_speed: float, max_speed: float
) -> tuple[np.ndarray, np.ndarray]:
    """Frames float32 (seq_len, size, size, 3) of a texture translating at constant velocity.

    Returns the frames and the velocity (2,) in pixels per frame (x, y); the shift at frame t
    is the velocity times t rounded to whole pixels.
    """
    base = texture(rng, size)
    speed = rng.uniform(min_speed, max_speed)
    angle = rng.uniform(0.0, 2.0 * np.pi)
    velocity = speed * np.array([np.cos(angle), np.sin(angle)])
    frames = np.empty((seq_len, size, size, 3), dtype=np.float32)
    for t in range(seq_len):
        dx, dy = np.rint(velocity * t).astype(int)
        frames[t] = np.roll(base, shift=(dy, dx), axis=(0, 1))
    return frames, velocity
