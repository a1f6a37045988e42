"""The user-facing object: build SCALOR from a config, fit it, track objects in videos.

Example::

    from pyro_scalor.api import Scalor, TrackingConfig
    scalor = Scalor.from_checkpoint("runs/cpu-default/checkpoint.pt")
    result = scalor.track(video)        # video (B, T, 3, 64, 64) in [0, 1]
    result.boxes, result.ids, result.valid, result.reconstruction
    strict = scalor.track(video, tracking=TrackingConfig(suppression_threshold=0.3))
    dense = scalor.track(video, max_objects=64)   # another slot capacity than in training
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import pyro
import pyro.poutine as poutine
import torch

from pyro_scalor.model.config import ModelConfig, TrackingConfig, get_model_config
from pyro_scalor.model.geometry import boxes_to_pixels
from pyro_scalor.model.guide import ScalorGuide
from pyro_scalor.model.handlers import NoiseScale
from pyro_scalor.model.model import ScalorModel
from pyro_scalor.model.nets import ScalorNets
from pyro_scalor.model.records import GuideFrame, ModelFrame, stack_frames
from pyro_scalor.validation import validate_video

__all__ = ["GenerationResult", "Scalor", "TrackingConfig", "TrackingResult"]


@dataclass
class TrackingResult:
    """Per-frame outputs of :meth:`Scalor.track` for B videos of T frames and K slots.

    boxes (B, T, K, 4): pixel ``(x_min, y_min, x_max, y_max)`` (max exclusive) tight around each
    object's rendered mask (alpha > 0.5), like the ground truth; glimpse_boxes (B, T, K, 4): the
    objects' attention windows (z_where), clipped to the frame; mask_area (B, T, K) pixels of the
    rendered mask; ids (B, T, K) track ids; presence (B, T, K) in [0, 1]; valid (B, T, K):
    presence > 0.5 and a rendered mask of at least ``min_area`` pixels (an object that draws
    nothing is not in the scene); discovered (B, T, K) newly discovered at that frame (else
    propagated); depth (B, T, K); reconstruction and background (B, T, C, H, W); masks
    (B, T, 1, H, W) the foreground mask; num_propagated, num_discovered, num_rejected,
    num_dropped (B, T) (see :class:`pyro_scalor.model.records.GuideFrame`; num_dropped counts
    present discoveries left out for lack of a free slot).
    """

    boxes: torch.Tensor
    glimpse_boxes: torch.Tensor
    mask_area: torch.Tensor
    ids: torch.Tensor
    presence: torch.Tensor
    valid: torch.Tensor
    discovered: torch.Tensor
    depth: torch.Tensor
    reconstruction: torch.Tensor
    background: torch.Tensor
    masks: torch.Tensor
    num_propagated: torch.Tensor
    num_discovered: torch.Tensor
    num_rejected: torch.Tensor
    num_dropped: torch.Tensor

    def to(self, device) -> TrackingResult:
        """Move every tensor to ``device``."""
        return TrackingResult(**{k: v.to(device) for k, v in self.__dict__.items()})

    @staticmethod
    def cat(parts: list[TrackingResult]) -> TrackingResult:
        """Concatenate results along the batch dim."""
        return TrackingResult(
            **{k: torch.cat([getattr(p, k) for p in parts]) for k in parts[0].__dict__}
        )


@dataclass
class GenerationResult:
    """Videos sampled by :meth:`Scalor.sample_prior` or :meth:`Scalor.generate`.

    frames, background (B, T, C, H, W); masks (B, T, 1, H, W); boxes (B, T, K, 4) pixels tight
    around each object's rendered mask and glimpse_boxes its attention window (as in
    TrackingResult); ids, presence, valid (presence > 0.5 and a non-empty mask), discovered,
    depth (B, T, K); ``observed`` is the number of leading
    frames that were inferred from data (0 for prior samples); the rest were imagined.
    """

    frames: torch.Tensor
    background: torch.Tensor
    masks: torch.Tensor
    boxes: torch.Tensor
    ids: torch.Tensor
    presence: torch.Tensor
    valid: torch.Tensor
    discovered: torch.Tensor
    depth: torch.Tensor
    observed: int
    glimpse_boxes: torch.Tensor | None = None


class Scalor:
    """SCALOR's model, guide and networks together.

    ``Scalor(config)`` builds fresh networks for a :class:`ModelConfig` (or preset name);
    ``model`` and ``guide`` are the Pyro programs (usable with ``poutine.trace``, ``replay``,
    ``condition`` and ``Predictive``); ``nets`` is the ``nn.Module`` with every parameter.
    ``tracking`` (a :class:`TrackingConfig`, default ``TrackingConfig()``) is how :meth:`track`,
    :meth:`generate` and :meth:`sample_prior` apply the duplicate rules unless a call passes
    its own; checkpoints keep it.
    """

    def __init__(
        self,
        config: ModelConfig | str = "cpu",
        device: str | torch.device = "cpu",
        seed: int | None = None,
        tracking: TrackingConfig | None = None,
    ) -> None:
        if isinstance(config, str):
            config = get_model_config(config)
        if seed is not None:
            pyro.set_rng_seed(seed)
        self.config = config
        self.tracking = tracking if tracking is not None else TrackingConfig()
        self.device = torch.device(device)
        self.nets = ScalorNets(config).to(self.device)
        self.model = ScalorModel(self.nets)
        self.guide = ScalorGuide(self.nets)
        self._inference: dict[tuple, tuple[ScalorModel, ScalorGuide]] = {}

    def programs(self, **changes) -> tuple[ScalorModel, ScalorGuide]:
        """``(model, guide)`` for the config with ``changes`` applied, sharing these weights.

        Built on a shallow copy of ``nets`` (same sub-modules and parameters, nothing copied)
        whose ``cfg`` is changed; only use changes that leave parameter shapes alone (presence,
        rejection, suppression, ...). ``self`` is left unchanged.
        """
        nets = copy.copy(self.nets)
        nets.cfg = self.config.replace(**changes)
        return ScalorModel(nets), ScalorGuide(nets)

    def inference_programs(
        self,
        tracking: TrackingConfig | None = None,
        max_objects: int | None = None,
        imagine: bool = False,
    ) -> tuple[ScalorModel, ScalorGuide]:
        """``(model, guide)`` used by :meth:`track` and (``imagine``) :meth:`generate`.

        The training programs with the changes ``tracking`` (default ``self.tracking``) makes
        (:meth:`TrackingConfig.model_changes`; with ``imagine``, its transition for imagined
        frames too) and, when given, the slot capacity
        ``max_objects`` (no parameter depends on it), built once per change and sharing the
        weights.
        """
        tracking = tracking if tracking is not None else self.tracking
        changes = tracking.model_changes(self.config, imagine=imagine)
        if max_objects is not None and max_objects != self.config.max_objects:
            if max_objects < 1:
                raise ValueError(f"max_objects must be >= 1, got {max_objects}")
            changes["max_objects"] = int(max_objects)
        if not changes:
            return self.model, self.guide
        key = tuple(sorted(changes.items()))
        if key not in self._inference:
            self._inference[key] = self.programs(**changes)
        return self._inference[key]

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str | torch.device = "cpu") -> Scalor:
        """Load networks, configs and the tracking config from a training checkpoint."""
        from pyro_scalor.train.checkpoint import load_checkpoint

        ckpt = load_checkpoint(path, map_location=device)
        tracking = ckpt.get("tracking_config")
        if isinstance(tracking, dict):
            tracking = TrackingConfig.from_dict(tracking)
        scalor = cls(ckpt["model_config"], device=device, tracking=tracking)
        scalor.nets.load_state_dict(ckpt["nets"])
        scalor.train_config = ckpt["train_config"]
        scalor.step = ckpt["step"]
        return scalor

    def fit(self, train_config=None, run_dir: str | Path = "runs/api", **kwargs):
        """Train with SVI (see :class:`pyro_scalor.train.trainer.Trainer`); returns its summary."""
        from pyro_scalor.train.config import TrainConfig
        from pyro_scalor.train.trainer import Trainer

        trainer = Trainer(self, train_config or TrainConfig(), run_dir, **kwargs)
        return trainer.fit()

    @torch.no_grad()
    def track(
        self,
        video,
        *,
        chunk: int = 16,
        temperature: float = 0.5,
        min_area: int = 1,
        tracking: TrackingConfig | None = None,
        max_objects: int | None = None,
    ) -> TrackingResult:
        """Infer objects in ``video`` (B, T, C, H, W) with posterior modes; see TrackingResult.

        ``chunk`` sequences run at a time; ``tracking`` (default ``self.tracking``) sets the
        duplicate rules and the discovery threshold; ``max_objects`` the slot capacity K
        (default: the trained one).
        """
        if chunk < 1:
            raise ValueError(f"chunk must be >= 1 (sequences per pass), got {chunk}")
        cfg = self.config
        video = validate_video(
            video, channels=(cfg.channels,), height=cfg.image_size, width=cfg.image_size
        ).to(self.device)
        tracking = tracking if tracking is not None else self.tracking
        programs = self.inference_programs(tracking, max_objects)
        threshold = tracking.discovery_threshold
        parts = [
            self._track_chunk(programs, video[i : i + chunk], temperature, min_area, threshold)
            for i in range(0, video.shape[0], chunk)
        ]
        return TrackingResult.cat(parts)

    @torch.no_grad()
    def sample_prior(
        self,
        num_sequences: int,
        num_frames: int,
        *,
        disc_pres_prior: float = 0.1,
        temperature: float = 0.1,
        seed: int | None = None,
        noise_scale: float = 1.0,
        tracking: TrackingConfig | None = None,
        max_objects: int | None = None,
    ) -> GenerationResult:
        """Sample whole videos from the model from t = 0 (objects and background from priors;
        objects move with the tracking config's transition for imagined frames, if it names one).

        ``disc_pres_prior`` is the discovery presence prior (0.1 as in the paper's generation);
        ``noise_scale`` multiplies the std of every Gaussian latent (1 = the model, 0 = means);
        ``max_objects`` the slot capacity K (default: the trained one).
        """
        if num_sequences < 1 or num_frames < 1:
            raise ValueError(
                f"num_sequences and num_frames must be >= 1, got {num_sequences} and {num_frames}"
            )
        if seed is not None:
            pyro.set_rng_seed(seed)
        frames: list[ModelFrame] = []
        NoiseScale(noise_scale)(self.inference_programs(tracking, max_objects, imagine=True)[0])(
            batch_size=num_sequences,
            num_frames=num_frames,
            record=frames,
            temperature=temperature,
            disc_pres_prior=disc_pres_prior,
        )
        return self._generation(frames, observed=0)

    @torch.no_grad()
    def generate(
        self,
        video,
        horizon: int,
        *,
        disc_pres_prior: float = 0.1,
        temperature: float = 0.1,
        seed: int | None = None,
        noise_scale: float = 1.0,
        tracking: TrackingConfig | None = None,
        max_objects: int | None = None,
    ) -> GenerationResult:
        """Conditional generation: infer the observed ``video`` (B, T, C, H, W) with the guide,
        then continue ``horizon`` frames with the transition priors (discovery on): those the
        tracking config names for imagined frames (``imagine_transition_prior``,
        ``imagine_motion_estimate``), else the trained ones.

        ``noise_scale`` multiplies the std of the imagined frames' Gaussian latents (1 = the
        model, 0 = the transition priors' means); ``max_objects`` the slot capacity K (default:
        the trained one)."""
        if horizon < 1:
            raise ValueError(f"horizon must be >= 1, got {horizon}")
        cfg = self.config
        video = validate_video(
            video, channels=(cfg.channels,), height=cfg.image_size, width=cfg.image_size
        ).to(self.device)
        if seed is not None:
            pyro.set_rng_seed(seed)
        kw = dict(temperature=temperature, disc_pres_prior=disc_pres_prior)
        tracking = tracking if tracking is not None else self.tracking
        model, guide = self.inference_programs(tracking, max_objects, imagine=True)
        trace = poutine.trace(guide).get_trace(
            video, deterministic=True, discovery_threshold=tracking.discovery_threshold, **kw
        )
        frames: list[ModelFrame] = []
        NoiseScale(noise_scale)(poutine.replay(model, trace=trace))(
            video, num_frames=video.shape[1] + horizon, record=frames, **kw
        )
        return self._generation(frames, observed=video.shape[1])

    def _generation(self, frames: list[ModelFrame], observed: int) -> GenerationResult:
        m = stack_frames(frames)  # every field (B, T, ...)
        return GenerationResult(
            frames=m.reconstruction,
            background=m.background,
            masks=m.foreground_mask,
            boxes=m.mask_box,
            glimpse_boxes=self._pixels(m.box),
            ids=m.ids,
            presence=m.presence,
            valid=(m.presence > 0.5) & (m.mask_area >= 1),
            discovered=m.discovered,
            depth=m.depth,
            observed=observed,
        )

    def _track_chunk(
        self, programs, video: torch.Tensor, temperature: float, min_area: int, threshold: float
    ) -> TrackingResult:
        kw = dict(
            temperature=temperature,
            disc_pres_prior=1e-3,
            deterministic=True,
            discovery_threshold=threshold,
        )
        model, guide = programs
        guide_frames: list[GuideFrame] = []
        model_frames: list[ModelFrame] = []
        trace = poutine.trace(guide).get_trace(video, record=guide_frames, **kw)
        poutine.replay(model, trace=trace)(video, record=model_frames, **kw)
        g, m = stack_frames(guide_frames), stack_frames(model_frames)  # every field (B, T, ...)
        return TrackingResult(
            boxes=m.mask_box,
            glimpse_boxes=self._pixels(g.box),
            mask_area=m.mask_area,
            ids=g.ids,
            presence=g.presence,
            valid=(g.presence > 0.5) & (m.mask_area >= min_area),
            discovered=g.discovered,
            depth=g.depth,
            reconstruction=m.reconstruction,
            background=m.background,
            masks=m.foreground_mask,
            num_propagated=g.num_propagated,
            num_discovered=g.num_discovered,
            num_rejected=g.num_rejected,
            num_dropped=g.num_dropped,
        )

    def _pixels(self, boxes: torch.Tensor) -> torch.Tensor:
        """Attention windows (..., 4) ``(sx, sy, cx, cy)`` to pixel boxes clipped to the frame."""
        size = self.config.image_size
        return boxes_to_pixels(boxes, size, size).clamp(0, size)
