"""Typed configuration of the SCALOR model and guide, with named presets.

Every swappable part (priors, guide variants, presence relaxation) is a field here, so a notebook
changes behaviour by building a new config (``dataclasses.replace``) rather than editing code.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

TRANSITION_PRIORS = ("learned", "velocity", "constant-velocity", "fixed")
#: How the motion the 'velocity' prior centres on is estimated from an object's changes.
MOTION_ESTIMATES = ("exponential", "least-squares", "drawn")
BACKGROUND_PRIORS = ("learned", "fixed")
#: How presence is sampled: 'relaxed' (logit relaxed Bernoulli, reparameterised) or 'hard'
#: (Bernoulli 0/1); see :mod:`pyro_scalor.model.distributions`.
PRESENCE_MODES = ("relaxed", "hard")
#: How a tracked object's presence follows from the previous frame: 'gated' (the paper's: the
#: tracker's Bernoulli, gated once by the previous presence) or 'compound' (the probability and
#: the sample are both multiplied by the previous presence, so tracks fade each frame).
PROPAGATION_MODES = ("gated", "compound")
#: How propagated objects and accepted discoveries share the K slots: 'tracks' (propagated
#: objects keep their slots; discoveries fill free slots; the extra ones are dropped) or 'topk'
#: (the K most present candidates, so a discovery can evict a track).
MERGE_MODES = ("tracks", "topk")
#: What a proposal is tested with for rejection: 'mask' (its decoded alpha, as in the paper) or
#: 'box' (its whole box).
REJECTION_RULES = ("mask", "box")

#: Fields that configs saved by earlier versions hold and :meth:`ModelConfig.from_dict` drops:
#: ``inference_suppression`` became :attr:`TrackingConfig.suppression`; ``what_scale_min`` was
#: never read.
REMOVED_MODEL_FIELDS = ("what_scale_min", "inference_suppression")

#: Values that :meth:`ModelConfig.from_dict` gives fields absent from a saved config: the
#: behaviour such a config was trained with.
ABSENT_MODEL_FIELDS = {"propagation": "compound", "merge": "topk", "rejection_rule": "box"}


@dataclass(frozen=True)
class ModelConfig:
    """Sizes and switches of the SCALOR model and guide.

    Geometry: ``image_size`` square frames with ``channels``; a ``grid_size`` x ``grid_size``
    discovery grid; ``max_objects`` fixed slots; the decoder renders glimpses of ``glimpse_size``
    pixels and the glimpse encoder reads crops of ``encoder_glimpse_size`` (at most the decoder's;
    objects of at most that many pixels lose nothing, and encoding every cell is the costliest
    part of a step); ``decoder_last_channels`` is the width of the glimpse decoder's last,
    full-resolution stage (the costliest ops of a training step at 32x32 glimpses).
    ``background_size`` (0: ``image_size``) is the resolution the background decoder paints
    at before bilinear upsampling to the frame: a smooth background needs little, and a coarse
    one cannot paint small objects into the background instead of explaining them as objects.
    Priors: ``transition_prior`` for propagated what/where/depth: 'learned' (the paper's GRU
    transition), 'velocity' (a project addition: as 'learned', but the mean of the centre's
    change is the object's previous one plus the GRU's correction, so imagined objects keep
    moving), 'constant-velocity' (also an addition: 'velocity' without the correction, keeping
    what's previous value as its mean, so imagined objects move on unchanged) or 'fixed'
    (standard normal). ``motion_estimate`` is the motion 'velocity' and 'constant-velocity'
    centre on: 'exponential', an exponential average of the object's changes with weight
    ``velocity_smoothing`` on the past (0: the last change), or 'least-squares', the slope of a
    least-squares line through the object's last ``velocity_window`` + 1 boxes, or 'drawn', that
    slope through where the object was drawn (its decoded alpha's centroid, or the side of it
    the view does not cut; see :func:`pyro_scalor.model.priors.observe_drawn`); see
    :mod:`pyro_scalor.model.priors`.
    ``background_prior`` ('learned' GRU transition or 'fixed') likewise for z_bg.
    Guide variants: ``rejection`` (proposal-rejection on), ``attention`` (propagation attends to
    a crop of the feature map at the tracker's previous position; else the whole map).
    ``propagation`` (:data:`PROPAGATION_MODES`), ``merge`` (:data:`MERGE_MODES`) and
    ``rejection_rule`` (:data:`REJECTION_RULES`) choose the paper's behaviours (the defaults) or
    the earlier ones. ``track_admission`` (0: every discovery is tracked): an object discovered
    at a frame is drawn there whatever its presence, but goes on to a tracker only if its
    presence exceeded this (the official code's 0.7); model and guide alike. Rejection by
    mask: a proposal's pixels are those where its decoded alpha exceeds
    ``rejection_proposal_alpha`` (0.3 in the official code); it is rejected when more
    than ``rejection_threshold`` (tau, 0.3) of them lie where the propagated mask exceeds
    ``rejection_alpha`` (0.1). Rejection by box tests the proposal's whole box instead.
    ``max_objects`` sets no parameter shape: tracking may use another capacity than training.
    ``presence_floor`` (0: exact): on the CPU, objects with presence at or below it are neither
    decoded nor drawn (nor counted in the propagated mask), so a step's decoding grows with the
    objects present rather than the slots; each such object would have added at most
    ``presence_floor`` times its alpha to a pixel. Slots with presence exactly 0 are skipped
    at any value. On a GPU every slot is decoded and drawn (selecting rows needs shapes that
    change, which CUDA graphs forbid).
    ``suppression`` (a project addition, in model and guide alike, during training too): a
    proposal whose box overlaps a more present proposal's box, or a present propagated object's
    box, by more than ``suppression_threshold`` of the smaller box is dropped, so one object is
    not claimed twice. ``track_suppression_threshold`` (0 disables) extends it to propagated
    objects: a propagated object whose box has an IoU above it with the box of a more present
    (or, at equal presence, older) propagated object is dropped and its tracker ends: two
    trackers that drifted onto one object. Tracking can switch these rules on (and change their
    thresholds) without retraining: see :class:`TrackingConfig`.
    ``discovery_residual`` (a project addition): the discovery head also sees the frame where the
    propagated objects draw nothing, ``x * (1 - M)``, beside their mask ``M`` (else ``M`` only),
    so a few new pixels next to a tracked object stand out.
    """

    image_size: int = 64
    channels: int = 3
    grid_size: int = 8
    max_objects: int = 16
    glimpse_size: int = 16
    encoder_glimpse_size: int = 16
    z_what_dim: int = 32
    z_bg_dim: int = 10
    feature_dim: int = 64
    hidden_dim: int = 128
    convlstm_layers: int = 1
    attention_size: int = 4
    min_scale: float = 0.05
    max_scale: float = 0.25
    max_shift_cells: float = 1.0
    max_motion: float = 0.2
    likelihood_std: float = 0.1
    presence_floor: float = 0.0
    rejection: bool = True
    rejection_threshold: float = 0.3
    rejection_alpha: float = 0.1
    rejection_proposal_alpha: float = 0.3
    rejection_rule: str = "mask"
    propagation: str = "gated"
    merge: str = "tracks"
    track_admission: float = 0.0
    suppression: bool = False
    suppression_threshold: float = 0.3
    track_suppression_threshold: float = 0.0
    attention: bool = True
    transition_prior: str = "learned"
    velocity_smoothing: float = 0.0
    motion_estimate: str = "exponential"
    velocity_window: int = 4
    background_prior: str = "learned"
    presence: str = "relaxed"
    weight_kl_by_presence: bool = True
    prop_presence_bias: float = 4.0
    disc_presence_bias: float = 0.0
    decoder_last_channels: int = 16
    background_size: int = 0
    discovery_residual: bool = False

    def __post_init__(self) -> None:
        def need(cond: bool, msg: str) -> None:
            if not cond:
                raise ValueError(f"ModelConfig: {msg}")

        need(self.image_size >= 16, f"image_size must be >= 16, got {self.image_size}")
        need(self.channels in (1, 3), f"channels must be 1 or 3, got {self.channels}")
        need(self.grid_size >= 1, f"grid_size must be >= 1, got {self.grid_size}")
        ratio = self.image_size / self.grid_size
        need(
            ratio == int(ratio) and math.log2(ratio) == int(math.log2(ratio)),
            f"image_size / grid_size must be a power of two, got {self.image_size}/"
            f"{self.grid_size}",
        )
        g = self.glimpse_size
        need(
            g >= 8 and math.log2(g) == int(math.log2(g)),
            f"glimpse_size must be 8, 16, 32 or 64, got {g}",
        )
        e = self.encoder_glimpse_size
        need(
            8 <= e <= g and math.log2(e) == int(math.log2(e)),
            f"encoder_glimpse_size must be a power of two in [8, glimpse_size={g}], got {e}",
        )
        need(self.decoder_last_channels >= 1, "decoder_last_channels must be >= 1")
        bs = self.background_size
        need(
            bs == 0 or (4 <= bs <= self.image_size and math.log2(bs) == int(math.log2(bs))),
            f"background_size must be 0 (image_size) or a power of two in [4, image_size], "
            f"got {bs}",
        )
        need(self.max_objects >= 1, f"max_objects must be >= 1, got {self.max_objects}")
        need(self.z_what_dim >= 1 and self.z_bg_dim >= 1, "latent sizes must be >= 1")
        need(0 < self.min_scale < self.max_scale <= 2, "need 0 < min_scale < max_scale <= 2")
        need(0 <= self.presence_floor < 0.5, "presence_floor must be in [0, 0.5)")
        need(self.likelihood_std > 0, f"likelihood_std must be > 0, got {self.likelihood_std}")
        need(0 < self.rejection_threshold <= 1, "rejection_threshold must be in (0, 1]")
        need(0 <= self.rejection_alpha < 1, "rejection_alpha must be in [0, 1)")
        need(0 <= self.rejection_proposal_alpha < 1, "rejection_proposal_alpha must be in [0, 1)")
        need(0 <= self.velocity_smoothing < 1, "velocity_smoothing must be in [0, 1)")
        need(self.velocity_window >= 1, f"velocity_window must be >= 1, got {self.velocity_window}")
        need(0 <= self.track_admission < 1, "track_admission must be in [0, 1) (0 admits all)")
        need(0 < self.suppression_threshold <= 1, "suppression_threshold must be in (0, 1]")
        need(
            0 <= self.track_suppression_threshold <= 1,
            "track_suppression_threshold must be in [0, 1] (0 disables)",
        )
        for value, choices, what in (
            (self.transition_prior, TRANSITION_PRIORS, "transition_prior"),
            (self.motion_estimate, MOTION_ESTIMATES, "motion_estimate"),
            (self.background_prior, BACKGROUND_PRIORS, "background_prior"),
            (self.presence, PRESENCE_MODES, "presence"),
            (self.propagation, PROPAGATION_MODES, "propagation"),
            (self.merge, MERGE_MODES, "merge"),
            (self.rejection_rule, REJECTION_RULES, "rejection_rule"),
        ):
            need(value in choices, f"unknown {what} {value!r}; valid choices: {', '.join(choices)}")

    @property
    def num_cells(self) -> int:
        """Number of discovery grid cells H * W."""
        return self.grid_size * self.grid_size

    @property
    def background_resolution(self) -> int:
        """Side in pixels at which the background decoder paints (before upsampling)."""
        return self.background_size or self.image_size

    def replace(self, **changes) -> ModelConfig:
        """Return a copy with ``changes`` applied (validated again)."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        """The config saved as ``dataclasses.asdict(config)``, by this or an earlier version.

        Drops the fields of :data:`REMOVED_MODEL_FIELDS` (their tracking part is read by
        :meth:`TrackingConfig.from_model_dict`); the fields of :data:`ABSENT_MODEL_FIELDS` that
        ``d`` lacks take the values given there; unknown fields raise ValueError.
        """
        return dataclass_from_dict(cls, {**ABSENT_MODEL_FIELDS, **d}, REMOVED_MODEL_FIELDS)


@dataclass(frozen=True)
class TrackingConfig:
    """How :meth:`pyro_scalor.api.Scalor.track` and ``generate`` apply the duplicate rules.

    ``suppression`` switches on the model's duplicate suppression (see :class:`ModelConfig`) when
    tracking and generating even if training ran without it, like non-maximum suppression at
    test time (training without it and tracking with it measured best); False tracks with the
    trained programs as they are. ``suppression_threshold`` and ``track_suppression_threshold``
    replace the model config's thresholds while tracking (None keeps the model's; 0 disables
    ending duplicate trackers).

    ``discovery_threshold`` is the presence probability a discovery needs to count as an object
    (and go on to a tracker) with posterior modes: 0.5 is the mode; the public SCALOR code hands
    a discovery to a tracker only above 0.7. Propagated objects keep the mode.

    ``imagine_transition_prior`` and ``imagine_motion_estimate`` (None: the trained ones)
    replace the model's ``transition_prior`` and ``motion_estimate`` when ``generate`` and
    ``sample_prior`` imagine frames. Neither changes a parameter or what the guide infers, so a
    model can be trained with the prior that tracks best and imagine with the one that predicts
    motion best (on the ``cpu-default`` preset, see :mod:`pyro_scalor.train.config`).
    """

    suppression: bool = True
    suppression_threshold: float | None = None
    track_suppression_threshold: float | None = None
    discovery_threshold: float = 0.5
    imagine_transition_prior: str | None = None
    imagine_motion_estimate: str | None = None

    def __post_init__(self) -> None:
        s, ts = self.suppression_threshold, self.track_suppression_threshold
        if s is not None and not 0 < s <= 1:
            raise ValueError(f"TrackingConfig: suppression_threshold must be in (0, 1], got {s}")
        if ts is not None and not 0 <= ts <= 1:
            raise ValueError(
                f"TrackingConfig: track_suppression_threshold must be in [0, 1], got {ts}"
            )
        if not 0 < self.discovery_threshold < 1:
            raise ValueError(
                "TrackingConfig: discovery_threshold must be in (0, 1), "
                f"got {self.discovery_threshold}"
            )
        for name, allowed in (
            ("imagine_transition_prior", TRANSITION_PRIORS),
            ("imagine_motion_estimate", MOTION_ESTIMATES),
        ):
            value = getattr(self, name)
            if value is not None and value not in allowed:
                raise ValueError(
                    f"TrackingConfig: {name} must be one of {', '.join(allowed)} or None, "
                    f"got {value!r}"
                )

    def model_changes(self, model: ModelConfig, imagine: bool = False) -> dict:
        """The ``ModelConfig`` changes that tracking makes to ``model`` (empty: none); with
        ``imagine``, those of generating (the imagined frames' transition) as well."""
        suppression = model.suppression or self.suppression
        changes: dict = {"suppression": suppression}
        if imagine and self.imagine_transition_prior is not None:
            changes["transition_prior"] = self.imagine_transition_prior
        if imagine and self.imagine_motion_estimate is not None:
            changes["motion_estimate"] = self.imagine_motion_estimate
        if suppression and self.suppression_threshold is not None:
            changes["suppression_threshold"] = self.suppression_threshold
        if suppression and self.track_suppression_threshold is not None:
            changes["track_suppression_threshold"] = self.track_suppression_threshold
        return {k: v for k, v in changes.items() if getattr(model, k) != v}

    @classmethod
    def from_dict(cls, d: dict) -> TrackingConfig:
        """The config saved as ``dataclasses.asdict(config)``; unknown fields raise ValueError."""
        return dataclass_from_dict(cls, d, ())

    @classmethod
    def from_model_dict(cls, d: dict) -> TrackingConfig:
        """The tracking settings held by a model config dict saved before TrackingConfig
        existed: its ``inference_suppression`` switch (True when absent), with the model's own
        thresholds."""
        return cls(suppression=bool(d.get("inference_suppression", True)))


def dataclass_from_dict(cls, d: dict, removed: tuple[str, ...]):
    """``cls(**d)`` for a saved config dict: the ``removed`` keys (fields a config no longer has)
    are dropped; any other unknown key raises ValueError naming it."""
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - known - set(removed))
    if unknown:
        raise ValueError(
            f"{cls.__name__}: unknown field(s) {', '.join(unknown)} in a saved config; "
            f"known fields: {', '.join(sorted(known))}"
        )
    return cls(**{k: v for k, v in d.items() if k in known})


MODEL_PRESETS: dict[str, ModelConfig] = {
    # small and fast: the base of the CPU default (16x16 glimpses, z_what 32, 16 slots; the
    # cpu-default run preset narrows it: pyro_scalor.train.config)
    "cpu": ModelConfig(),
    # the reference configuration of the speed benchmark and the paper-scale runs (8 channels
    # in the decoder's 32x32 stage: the three costliest ops of a CPU step live there)
    "reference": ModelConfig(
        glimpse_size=32,
        z_what_dim=64,
        max_objects=32,
        convlstm_layers=2,
        decoder_last_channels=8,
    ),
    # very small, for tests and smoke runs
    "tiny": ModelConfig(
        grid_size=4,
        max_objects=4,
        glimpse_size=8,
        encoder_glimpse_size=8,
        z_what_dim=4,
        z_bg_dim=2,
        feature_dim=8,
        hidden_dim=16,
        attention_size=2,
    ),
}


def get_model_config(name: str, **overrides) -> ModelConfig:
    """Return the named model preset with ``overrides`` applied."""
    if name not in MODEL_PRESETS:
        raise ValueError(
            f"unknown model preset {name!r}; valid choices: {', '.join(MODEL_PRESETS)}"
        )
    return MODEL_PRESETS[name].replace(**overrides) if overrides else MODEL_PRESETS[name]
