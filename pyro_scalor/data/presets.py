"""Named dataset presets: the SCALOR paper's settings (Section 5.1, Appendix B) and a smoke set.

Environment sizes were tuned so that the mean number of visible objects per frame matches the
paper's averages (see ``experiments/data/README.md`` for the measurements).
"""

from __future__ import annotations

import dataclasses
from types import MappingProxyType

from pyro_scalor.data.config import DataConfig, check_field_names
from pyro_scalor.validation import check_choice

_LD = DataConfig(
    name="dsprites-ld", env_size=89, min_objects=10, max_objects=12, min_size=7, max_size=13
)
# Small objects for the dense settings: 55-99 of them must fit in a 64x64 view.
_HD = dataclasses.replace(
    _LD, name="dsprites-hd", env_size=77, min_objects=50, max_objects=64, min_size=5, max_size=9
)
_MNIST_LD = dataclasses.replace(
    _LD, name="mnist-ld", objects="mnist", env_size=99, min_size=10, max_size=16
)


def _variant(base: DataConfig, name: str, **changes) -> DataConfig:
    return dataclasses.replace(base, name=name, **changes)


_PRESETS: dict[str, DataConfig] = {
    p.name: p
    for p in (
        _LD,
        _variant(_LD, "dsprites-md", env_size=88, min_objects=24, max_objects=27),
        _HD,
        _variant(
            _HD,
            "dsprites-vhd",
            env_size=79,
            min_objects=100,
            max_objects=120,
            min_size=5,
            max_size=8,
        ),
        _MNIST_LD,
        _variant(_MNIST_LD, "mnist-md", env_size=98, min_objects=24, max_objects=27),
        # frequent dense discovery: 10-15 new objects at steps 0, 6, 13, 20 (paper: 1, 7, 14, 21)
        _variant(
            _HD,
            "dsprites-dense",
            env_size=128,
            seq_len=24,
            min_objects=10,
            max_objects=15,
            discovery_steps=(0, 6, 13, 20),
        ),
        _variant(_LD, "dsprites-movingbg", background="moving"),
        # generalisation: longer sequences, more objects, unseen digits
        _variant(_LD, "dsprites-ld-long", seq_len=16),
        _variant(_HD, "dsprites-10-15", min_objects=10, max_objects=15),
        _variant(_HD, "dsprites-50-60", min_objects=50, max_objects=60),
        _variant(_MNIST_LD, "mnist-0-5", digits=(0, 1, 2, 3, 4, 5)),
        _variant(_MNIST_LD, "mnist-6-9", digits=(6, 7, 8, 9)),
        # tiny and fast, for tests, notebooks and CI
        _variant(_LD, "smoke", seq_len=4, num_train=32, num_val=8, num_test=8),
    )
}
PRESETS = MappingProxyType(_PRESETS)

#: The paper's average number of visible objects per frame (Section 5.1); the MNIST settings
#: use the dSprites densities of the same name.
PAPER_VISIBLE_AVERAGE = MappingProxyType(
    {
        "dsprites-ld": 9.2,
        "dsprites-md": 21.9,
        "dsprites-hd": 54.5,
        "dsprites-vhd": 99.0,
        "mnist-ld": 9.2,
        "mnist-md": 21.9,
    }
)


def preset_names() -> list[str]:
    """Names of all presets, in registry order."""
    return list(PRESETS)


def get_preset(name: str, **overrides) -> DataConfig:
    """The preset ``name`` with fields replaced by ``overrides`` (checked like any config).

    Raises ValueError listing the valid names for an unknown preset, or the valid fields for
    an unknown override.
    """
    check_choice(name, PRESETS, "preset")
    return resolve_config(PRESETS[name], **overrides)


def resolve_config(preset: str | DataConfig, **overrides) -> DataConfig:
    """A preset by name, or a given ``DataConfig``, with ``overrides`` applied and checked."""
    if isinstance(preset, str):
        return get_preset(preset, **overrides)
    if not overrides:
        return preset
    check_field_names(overrides)
    return dataclasses.replace(preset, **overrides)
