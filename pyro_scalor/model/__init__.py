"""SCALOR's generative model, guide, and their parts (see :mod:`pyro_scalor.model.sites`)."""

from pyro_scalor.model.config import MODEL_PRESETS, ModelConfig, TrackingConfig, get_model_config
from pyro_scalor.model.guide import ScalorGuide
from pyro_scalor.model.model import ScalorModel
from pyro_scalor.model.nets import ScalorNets

__all__ = [
    "MODEL_PRESETS",
    "ModelConfig",
    "ScalorGuide",
    "ScalorModel",
    "ScalorNets",
    "TrackingConfig",
    "get_model_config",
]
