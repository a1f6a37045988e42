"""What the model and the guide share: plates, presence weighting, discovery masks, shapes, and
the step that turns discovery samples into candidate slots (rejection included)."""

from __future__ import annotations

import contextlib

import pyro
import pyro.poutine as poutine
import torch

from pyro_scalor.model.config import ModelConfig
from pyro_scalor.model.geometry import BoxCoder
from pyro_scalor.model.nets import ScalorNets
from pyro_scalor.model.rejection import reject_proposals
from pyro_scalor.model.render import glimpse_alpha
from pyro_scalor.model.slots import Slots
from pyro_scalor.validation import validate_video


class ScalorProgram:
    """Base of :class:`ScalorModel` and :class:`ScalorGuide`: holds the nets and the config.

    Both are called with the same signature::

        program(video=None, *, batch_size=None, num_frames=None, temperature=1.0,
                disc_pres_prior=0.1, discovery_mask=None, deterministic=False,
                discovery_threshold=0.5, record=None)

    ``video`` (B, T, C, H, W) in [0, 1], or None to sample (then give batch_size, num_frames);
    ``temperature`` of relaxed presence; ``disc_pres_prior`` the discovery presence prior (a
    float, a 0-dim tensor, or a list of per-frame values whose last entry repeats, e.g.
    ``[first frame, later frames]`` for generation);
    ``discovery_mask`` (B, T) bool, False where discovery is dropped (discovery dropout);
    ``deterministic`` makes the guide use posterior modes, in which a discovery is present when
    its presence probability exceeds ``discovery_threshold`` (0.5: the mode; the model ignores
    both); ``record`` (a list) receives one typed
    record per frame (:mod:`pyro_scalor.model.records`) for tracking, pictures and logs.
    """

    def __init__(self, nets: ScalorNets) -> None:
        self.nets = nets
        self.cfg: ModelConfig = nets.cfg
        c = self.cfg
        self.coder = BoxCoder(
            c.grid_size, c.min_scale, c.max_scale, c.max_shift_cells, c.max_motion
        )

    # ----------------------------------------------------------------------------------------
    def _shape(self, video, batch_size, num_frames) -> tuple[torch.Tensor | None, int, int]:
        """Validate ``video``; return it with the batch size and the number of frames to run.

        ``num_frames`` may exceed the video's length (the model then generates the extra
        frames); without a video, ``batch_size`` and ``num_frames`` are required.
        """
        c = self.cfg
        if video is None:
            if batch_size is None or num_frames is None:
                raise ValueError("without a video, give batch_size and num_frames to sample")
            if int(batch_size) < 1 or int(num_frames) < 1:
                raise ValueError(
                    f"batch_size and num_frames must be >= 1, got {batch_size} and {num_frames}"
                )
            return None, int(batch_size), int(num_frames)
        video = validate_video(
            video, channels=(c.channels,), height=c.image_size, width=c.image_size
        )
        n = video.shape[1] if num_frames is None else int(num_frames)
        if n < video.shape[1]:
            raise ValueError(f"num_frames={n} is shorter than the video ({video.shape[1]} frames)")
        return video, video.shape[0], n

    @staticmethod
    def _check_discovery_mask(mask: torch.Tensor | None, b: int, n_frames: int) -> None:
        """Raise ValueError unless ``mask`` is None or has shape (B, T)."""
        if mask is not None and tuple(mask.shape) != (b, n_frames):
            raise ValueError(
                f"discovery_mask must have shape (B={b}, T={n_frames}), got {tuple(mask.shape)}"
            )

    @staticmethod
    def _discovery_mask(mask: torch.Tensor | None, b: int, t: int) -> torch.Tensor | None:
        """(B, 1) bool mask of sequences whose discovery runs at frame t, or None for all."""
        if mask is None:
            return None
        return mask[:, t].bool().unsqueeze(-1)

    def _proposals(
        self, t: int, pres, where, what, depth, prop_mask, dmask, prop: Slots | None
    ) -> tuple[Slots, torch.Tensor]:
        """Discovery samples of frame t to candidate slots, with the rules that drop proposals.

        Takes presence (..., B, HW), where (..., B, HW, 4), what (..., B, HW, Dw), depth
        (..., B, HW, 1); the propagated mask (..., B, 1, H, W) and objects ``prop`` (None at
        t = 0); the discovery mask (B, 1) or None. Returns ``(slots (..., B, HW), num_rejected
        (..., B))`` (see :func:`pyro_scalor.model.rejection.reject_proposals`).
        """
        cfg = self.cfg
        box, logit = self.coder.discovery(where)
        kept = (None, None) if prop is None else (prop.pres, prop.box)
        alpha = None
        if cfg.rejection and cfg.rejection_rule == "mask" and prop_mask is not None:
            alpha = glimpse_alpha(self.nets.glimpse_decoder, what, self.nets.alpha_memo)
        pres, num_rejected = reject_proposals(cfg, pres, box, prop_mask, dmask, *kept, alpha)
        slots = Slots.proposals(
            t, pres, box, logit, what, depth, cfg.hidden_dim, cfg.velocity_window
        )
        return slots, num_rejected

    def _gate(self, prev: Slots) -> torch.Tensor:
        """The previous presence (..., B, K) that gates propagation. With
        ``track_admission`` > 0 an object discovered at the previous frame goes on to a tracker
        only if its presence there was above it (else the gate is 0 and its slot is free);
        objects already tracked are gated by their presence as they are."""
        thr = self.cfg.track_admission
        if thr <= 0:
            return prev.pres
        refused = prev.discovered & (prev.pres <= thr)
        return torch.where(refused, torch.zeros_like(prev.pres), prev.pres)

    def _propagation_probs(self, probs: torch.Tensor, prev_pres: torch.Tensor) -> torch.Tensor:
        """The propagated presence's probability from the tracker's ``probs`` (..., B, K):
        multiplied by the previous presence with propagation 'compound', else as it is."""
        return probs * prev_pres if self.cfg.propagation == "compound" else probs

    def _alive(self, prev_pres: torch.Tensor):
        """Context for the propagated presence site: with propagation 'gated' it counts only
        for objects present at the previous frame (weighted like :meth:`_weight`), so an absent
        object's tracker adds nothing; with 'compound' it is unweighted."""
        if self.cfg.propagation == "compound":
            return contextlib.nullcontext()
        return self._weight(prev_pres)

    def _weight(self, pres: torch.Tensor):
        """Context that weights the Gaussian sites of objects by their presence.

        Relaxed presence scales them by the soft presence (the paper's weighted KLs); hard
        presence masks absent objects out, which exactly marginalises their latents (they do
        not affect any frame).
        """
        if not self.cfg.weight_kl_by_presence:
            return contextlib.nullcontext()
        if self.cfg.presence == "hard":
            return poutine.mask(mask=pres > 0.5)
        return poutine.scale(scale=pres.clamp(min=1e-6))

    @staticmethod
    def _mask(mask: torch.Tensor | None):
        return contextlib.nullcontext() if mask is None else poutine.mask(mask=mask)

    def _plates(self, b: int, device) -> dict:
        """The plates of one call: ``batch`` (dim -2), ``slots`` and ``cells`` (dim -1)."""
        return {
            "batch": pyro.plate("batch", b, dim=-2, device=device),
            "slots": pyro.plate("slots", self.cfg.max_objects, dim=-1, device=device),
            "cells": pyro.plate("cells", self.cfg.num_cells, dim=-1, device=device),
        }

    def _register(self) -> None:
        pyro.module("scalor", self.nets)
