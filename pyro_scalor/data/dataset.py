"""A torch ``Dataset`` over a generated split, a one-call loader and a seeded ``DataLoader``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from pyro_scalor.data.cache import load_or_generate, read_entry
from pyro_scalor.data.config import DataConfig
from pyro_scalor.data.presets import resolve_config


class MovingObjectsDataset(Dataset):
    """Sequences of a split with ground truth.

    Takes arrays as stored by the cache (``video`` uint8 (N, T, H, W, 3), ``boxes`` (N, T, O, 4),
    ``ids`` (N, O), ``visible`` (N, T, O)), possibly memory-mapped. Item ``i`` is a dict with
    ``video`` float32 (T, 3, H, W) in [0, 1], ``boxes`` float32 (T, O, 4) in view pixels
    ``(x_min, y_min, x_max, y_max)`` (max exclusive), ``ids`` int64 (O,) (0 = padding slot),
    ``visible`` bool (T, O) and ``index`` (int). With ``path`` (its cache entry) set, pickling
    it carries only the path, so worker processes reopen the memory maps.
    """

    def __init__(
        self,
        arrays: dict[str, np.ndarray],
        config: DataConfig,
        split: str,
        path: Path | None = None,
    ) -> None:
        lengths = {name: len(a) for name, a in arrays.items()}
        if len(set(lengths.values())) != 1:
            raise ValueError(f"arrays disagree on the number of sequences: {lengths}")
        self.arrays = arrays
        self.config = config
        self.split = split
        self.path = path

    def __getstate__(self) -> dict:
        # DataLoader workers started by spawn get the cache path, not a pickled copy of the data
        state = dict(self.__dict__)
        if self.path is not None:
            state["arrays"] = None
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        if self.arrays is None:
            arrays = read_entry(self.path)
            if arrays is None:
                raise FileNotFoundError(f"cache entry {self.path} is gone or incomplete")
            self.arrays = arrays

    def __len__(self) -> int:
        return len(self.arrays["video"])

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | int]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} sequences")
        index = index % len(self)
        video = torch.from_numpy(np.array(self.arrays["video"][index]))
        return {
            "video": video.permute(0, 3, 1, 2).float().div_(255.0),
            "boxes": torch.from_numpy(np.array(self.arrays["boxes"][index])),
            "ids": torch.from_numpy(np.array(self.arrays["ids"][index])),
            "visible": torch.from_numpy(np.array(self.arrays["visible"][index])),
            "index": index,
        }

    def videos(self, indices=None) -> torch.Tensor:
        """Videos float32 (B, T, 3, H, W) in [0, 1] for ``indices`` (default: all of them)."""
        raw = self.arrays["video"] if indices is None else self.arrays["video"][indices]
        return torch.from_numpy(np.array(raw)).permute(0, 1, 4, 2, 3).float().div_(255.0)


def load_dataset(
    preset: str | DataConfig,
    split: str,
    *,
    num_sequences: int | None = None,
    cache_dir: str | Path | None = None,
    progress: bool = False,
    **overrides,
) -> MovingObjectsDataset:
    """The ``split`` of a preset (by name, with config ``overrides``) or of a ``DataConfig``.

    Generates and caches it on first use (``cache_dir``, default ``$PYRO_SCALOR_CACHE`` or
    ``~/.cache/pyro-scalor``); ``num_sequences`` defaults to the config's size of the split.
    """
    config = resolve_config(preset, **overrides)
    arrays, path = load_or_generate(
        config, split, num_sequences, cache_dir=cache_dir, progress=progress
    )
    return MovingObjectsDataset(arrays, config, split, path)


def make_loader(
    dataset: Dataset,
    batch_size: int,
    shuffle: bool = True,
    seed: int = 0,
    drop_last: bool = False,
    num_workers: int = 0,
) -> DataLoader:
    """A ``DataLoader`` whose order depends only on ``seed`` (its own ``torch.Generator``).

    Batches are dicts of stacked tensors: ``video`` (B, T, 3, H, W), ``boxes`` (B, T, O, 4),
    ``ids`` (B, O), ``visible`` (B, T, O), ``index`` (B,).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    generator = torch.Generator()
    generator.manual_seed(seed)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        drop_last=drop_last,
        generator=generator,
        num_workers=num_workers,
    )
