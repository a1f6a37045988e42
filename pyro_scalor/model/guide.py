"""The amortised SCALOR guide q(z_1:T | x_1:T) (the paper's Eq. 6-7, Algorithms 1-2).

An image encoder plus a ConvLSTM give an H x W feature map per frame. Propagation: each tracker
attends to a bilinear crop of the feature map centred on its previous position (half the map's
width and height), updates its GRU, and infers presence, where, what and depth. With
``ModelConfig.propagation`` 'gated' the glimpse at the new box (the where posterior's mean) is
encoded first, and presence sees the attended features, the state, the where posterior and that
glimpse's features and what posterior; z_what is inferred from the same glimpse, so presence is
sampled before the sites it weights with one glimpse encoding per slot. With 'compound' presence
comes from the attended features and the state, and z_what from a glimpse at the sampled box.
Discovery: per cell, from the features and an encoding of the propagated mask;
proposals overlapping the propagated mask are rejected with the model's own rule. Background:
from the frame and the uncovered area (1 - M). Site names and the order of the steps match
:mod:`pyro_scalor.model.model`.
"""

from __future__ import annotations

import pyro
import pyro.distributions as dist
import torch

from pyro_scalor.model import sites
from pyro_scalor.model.distributions import presence_dist, presence_mode_value, presence_value
from pyro_scalor.model.geometry import apply_flat, crop
from pyro_scalor.model.priors import carry_motion, observe_drawn
from pyro_scalor.model.program import ScalorProgram
from pyro_scalor.model.records import GuideFrame
from pyro_scalor.model.rejection import end_duplicate_tracks
from pyro_scalor.model.render import glimpse_alpha, presence_mask
from pyro_scalor.model.slots import Slots, merge_with_index, take
from pyro_scalor.validation import capturing


class ScalorGuide(ScalorProgram):
    """q(z | x): call with the signature documented on :class:`ScalorProgram`."""

    def __call__(
        self,
        video: torch.Tensor | None = None,
        *,
        batch_size: int | None = None,
        num_frames: int | None = None,
        temperature: float = 1.0,
        disc_pres_prior: float = 0.1,
        discovery_mask: torch.Tensor | None = None,
        deterministic: bool = False,
        discovery_threshold: float = 0.5,
        record: list[GuideFrame] | None = None,
    ) -> None:
        """Sample every latent site given ``video`` (B, T, C, H, W)."""
        self._register()
        video, b, n_frames = self._shape(video, batch_size, num_frames)
        if video is None:
            raise ValueError("the guide needs a video (B, T, C, H, W) to condition on")
        n_frames = video.shape[1]  # the guide infers observed frames only
        self._check_discovery_mask(discovery_mask, b, n_frames)
        self.nets.mask_memo.clear()
        self.nets.alpha_memo.clear()
        cfg, nets = self.cfg, self.nets
        self._det = deterministic
        self._disc_threshold = float(discovery_threshold)
        plates = self._plates(b, video.device)
        features = self._features(video)
        slots = Slots.empty(
            (b,), cfg.max_objects, cfg.z_what_dim, cfg.hidden_dim, video.device, cfg.velocity_window
        )
        for t in range(n_frames):
            x = video[:, t]
            prop_mask = prop_alpha = None
            if t > 0:
                slots = self._propagate(t, slots, features[t], x, plates, temperature)
                prop_alpha = glimpse_alpha(
                    nets.glimpse_decoder,
                    slots.what,
                    nets.alpha_memo,
                    slots.pres,
                    cfg.presence_floor,
                )
                prop_mask = presence_mask(
                    nets.glimpse_decoder,
                    slots.what,
                    slots.box,
                    slots.pres,
                    cfg.image_size,
                    cfg.image_size,
                    memo=nets.mask_memo,
                    max_scale=cfg.max_scale,
                    alpha=prop_alpha,
                )
            n_prop = slots.pres.sum(-1)  # (..., B); 0 at t = 0 (no slot is present yet)
            dmask = self._discovery_mask(discovery_mask, b, t)
            disc, n_rej = self._discover(
                t, features[t], x, prop_mask, slots if t > 0 else None, plates, temperature, dmask
            )
            slots, n_dropped, index = merge_with_index(slots, disc, cfg.max_objects, cfg.merge)
            alpha = None
            if (
                prop_alpha is not None
                and cfg.rejection
                and cfg.rejection_rule == "mask"
                and not capturing()
            ):
                # rejection by mask decoded the proposals' alpha (memo): merge the two decodes
                # (inside a CUDA graph the memo is off, and decoding K slots costs less)
                disc_alpha = glimpse_alpha(nets.glimpse_decoder, disc.what, nets.alpha_memo)
                alpha = take(prop_alpha, disc_alpha, index)
            if cfg.motion_estimate == "drawn":
                # the model's decode of the merged slots (absent ones skipped alike)
                alpha = glimpse_alpha(
                    nets.glimpse_decoder, slots.what, None, slots.pres, cfg.presence_floor
                )
                slots = observe_drawn(cfg, slots, alpha)
            fg_mask = presence_mask(
                nets.glimpse_decoder,
                slots.what,
                slots.box,
                slots.pres,
                cfg.image_size,
                cfg.image_size,
                max_scale=cfg.max_scale,
                alpha=alpha,
                floor=cfg.presence_floor,
            )
            self._background(t, x, fg_mask, plates)
            if record is not None:
                record.append(GuideFrame.of(slots, n_prop, disc, n_rej, n_dropped))

    # ----------------------------------------------------------------------------------------
    def _sample(self, name: str, fn: dist.Distribution, mode_value: torch.Tensor):
        """Sample site ``name`` from ``fn`` (a point mass on ``mode_value`` if deterministic)."""
        if self._det:
            return pyro.sample(name, dist.Delta(mode_value, event_dim=fn.event_dim))
        return pyro.sample(name, fn)

    def _pres(
        self, name: str, probs: torch.Tensor, temperature: float, threshold: float = 0.5
    ) -> torch.Tensor:
        """Presence site ``name``; its mode is present above ``threshold``."""
        fn = presence_dist(probs, self.cfg.presence, temperature)
        v = self._sample(name, fn, presence_mode_value(probs, self.cfg.presence, threshold))
        return presence_value(v, self.cfg.presence)

    def _normal(self, name: str, loc: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        return self._sample(name, dist.Normal(loc, scale).to_event(1), loc)

    def _features(self, video: torch.Tensor) -> list[torch.Tensor]:
        """Per-frame ConvLSTM feature maps, each (B, F, G, G)."""
        enc = apply_flat(self.nets.image_encoder, video, keep=3)  # (B, T, F, G, G)
        state, out = None, []
        for t in range(video.shape[1]):
            h, state = self.nets.convlstm.step(enc[:, t], state)
            out.append(h)
        return out

    def _propagate(self, t, prev: Slots, feat, x, plates, temperature) -> Slots:
        cfg, nets = self.cfg, self.nets
        a = cfg.attention_size
        if cfg.attention:
            half = torch.full_like(prev.box[..., :2], 0.5)
            att_box = torch.cat([half, prev.box[..., 2:].clamp(-1, 1)], -1)
        else:
            att_box = torch.tensor([1.0, 1.0, 0.0, 0.0], device=x.device).expand(prev.box.shape)
        att = crop(feat, att_box, a).flatten(-3)  # (..., B, K, F*a*a)
        h, pres_logit, w_loc, w_scale, e = apply_flat(
            nets.guide_tracker.step, att, prev.inputs(), prev.h
        )
        gated = cfg.propagation == "gated"
        if gated:
            mean_box, _ = self.coder.propagation(w_loc, prev.box, prev.logit)
            g_feat, what_loc, what_scale = self._encode_glimpses(x, mean_box)
            pres_logit = apply_flat(nets.guide_tracker.presence, e, h, w_loc, g_feat, what_loc)
        gate = self._gate(prev)
        probs = self._propagation_probs(torch.sigmoid(pres_logit), gate)
        with plates["batch"], plates["slots"]:
            with self._alive(gate):
                pres = self._pres(sites.prop("pres", t), probs, temperature)
            pres = pres * gate
            with self._weight(pres):
                where = self._normal(sites.prop("where", t), w_loc, w_scale)
                box, logit = self.coder.propagation(where, prev.box, prev.logit)
                if not gated:
                    g_feat, what_loc, what_scale = self._encode_glimpses(x, box)
                what = self._normal(sites.prop("what", t), what_loc, what_scale)
                d_loc, d_scale = apply_flat(nets.guide_tracker.depth_posterior, g_feat, what, h)
                depth = self._normal(sites.prop("depth", t), d_loc, d_scale)
        pres = end_duplicate_tracks(cfg, pres, box, prev.ids)
        return Slots(
            pres=pres,
            box=box,
            logit=logit,
            **carry_motion(cfg, prev, where),
            what=what,
            depth=depth,
            h=h,
            ids=prev.ids.expand(pres.shape),
            discovered=torch.zeros(pres.shape, dtype=torch.bool, device=x.device),
        )

    def _discover(self, t, feat, x, prop_mask, prop, plates, temperature, dmask):
        nets = self.nets
        if prop_mask is None:
            prop_mask = torch.zeros(x.shape[:-3] + (1,) + x.shape[-2:], device=x.device)
        lead = prop_mask.shape[:-3]
        inp = prop_mask
        if self.cfg.discovery_residual:
            inp = torch.cat([prop_mask, x * (1 - prop_mask)], -3)
        mask_feat = apply_flat(nets.mask_encoder, inp, keep=3)  # (..., B, 16, G, G)
        feat = feat.expand(lead + feat.shape[-3:])
        head = apply_flat(nets.discovery_head, torch.cat([feat, mask_feat], -3), keep=3)
        with plates["batch"], plates["cells"], self._mask(dmask):  # head: (..., B, HW, .)
            probs = torch.sigmoid(head.pres_logit)
            pres = self._pres(sites.disc("pres", t), probs, temperature, self._disc_threshold)
            with self._weight(pres):
                where = self._normal(sites.disc("where", t), head.where_loc, head.where_scale)
                box, _ = self.coder.discovery(where)
                _, what_loc, what_scale = self._encode_glimpses(x, box)
                what = self._normal(sites.disc("what", t), what_loc, what_scale)
                depth = self._normal(sites.disc("depth", t), head.depth_loc, head.depth_scale)
        return self._proposals(
            t, pres, where, what, depth, prop_mask if t > 0 else None, dmask, prop
        )

    def _encode_glimpses(self, x: torch.Tensor, box: torch.Tensor):
        """Glimpses of frames x (B, C, H, W) at boxes (..., B, N, 4) through the glimpse encoder."""
        g = crop(x, box, self.cfg.encoder_glimpse_size)  # (..., B, N, C, e, e)
        return apply_flat(self.nets.glimpse_encoder, g, keep=3)

    def _background(self, t, x, fg_mask, plates) -> torch.Tensor:
        lead = fg_mask.shape[:-3]
        inp = torch.cat([x.expand(lead + x.shape[-3:]), 1 - fg_mask], -3)
        loc, scale = apply_flat(self.nets.bg_encoder, inp, keep=3)  # (..., B, Dbg)
        with plates["batch"]:
            return self._normal(sites.bg(t), loc.unsqueeze(-2), scale.unsqueeze(-2))
