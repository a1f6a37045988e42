"""Procedural moving-object videos with ground truth, a torch Dataset over them, real video.

Conventions shared with the model and the metrics: videos are float32 (B, T, 3, H, W) in
[0, 1] (uint8 on disk); boxes are view pixels ``(x_min, y_min, x_max, y_max)`` with max
exclusive, tight around each object's drawn pixels inside the view; per sequence ``boxes``
(T, O, 4), ``ids`` (O,) (>= 1, 0 for padding slots) and ``visible`` (T, O).

Typical use::

    from pyro_scalor.data import load_dataset, make_loader
    train = load_dataset("dsprites-ld", "train")          # generated once, then cached
    loader = make_loader(train, batch_size=4, shuffle=True, seed=0)
"""

from pyro_scalor.data.cache import default_cache_dir, load_or_generate
from pyro_scalor.data.config import SPLITS, DataConfig
from pyro_scalor.data.dataset import MovingObjectsDataset, load_dataset, make_loader
from pyro_scalor.data.generator import (
    GENERATOR_VERSION,
    SequenceData,
    generate_sequence,
    generate_split,
)
from pyro_scalor.data.presets import (
    PAPER_VISIBLE_AVERAGE,
    PRESETS,
    get_preset,
    preset_names,
    resolve_config,
)
from pyro_scalor.data.real_video import load_real_video

__all__ = [
    "GENERATOR_VERSION",
    "PAPER_VISIBLE_AVERAGE",
    "PRESETS",
    "SPLITS",
    "DataConfig",
    "MovingObjectsDataset",
    "SequenceData",
    "default_cache_dir",
    "generate_sequence",
    "generate_split",
    "get_preset",
    "load_dataset",
    "load_or_generate",
    "load_real_video",
    "make_loader",
    "preset_names",
    "resolve_config",
]
