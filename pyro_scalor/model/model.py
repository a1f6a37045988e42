"""The SCALOR generative model (the paper's Eq. 3-5 and Algorithm 3) as a Pyro program.

Per frame t: propagation of the K tracker slots (t >= 1; presence Bernoulli beta = f(h), the
sample gated once by the previous presence so an absent object stays absent, see
``ModelConfig.propagation``; where/what/depth transition priors of
:mod:`pyro_scalor.model.priors`, the where sample kept as the slot's ``motion``), discovery of
one proposal per grid cell under the ``cells`` plate, rejection of proposals overlapping the
propagated objects' mask, the merge into the K slots (``ModelConfig.merge``), the background
transition, and rendering with a Normal likelihood. Site names are listed in
:mod:`pyro_scalor.model.sites`. The guide (:mod:`pyro_scalor.model.guide`) follows the same
steps in the same order, method by method.
"""

from __future__ import annotations

import pyro
import pyro.distributions as dist
import torch

from pyro_scalor.model import sites
from pyro_scalor.model.distributions import presence_dist, presence_value
from pyro_scalor.model.geometry import apply_flat
from pyro_scalor.model.priors import TRANSITIONS, background_prior, carry_motion, observe_drawn
from pyro_scalor.model.program import ScalorProgram
from pyro_scalor.model.records import ModelFrame
from pyro_scalor.model.rejection import end_duplicate_tracks
from pyro_scalor.model.render import decode_glimpses, object_layers, presence_mask, render
from pyro_scalor.model.slots import Slots, merge


class ScalorModel(ScalorProgram):
    """p(x_1:T, z_1:T): call with the signature documented on :class:`ScalorProgram`."""

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
        record: list[ModelFrame] | None = None,
    ) -> torch.Tensor:
        """Run the generative process; returns the rendered frames (..., B, T, C, H, W)."""
        self._register()
        video, b, n_frames = self._shape(video, batch_size, num_frames)
        self._check_discovery_mask(discovery_mask, b, n_frames)
        cfg, nets = self.cfg, self.nets
        device = next(nets.parameters()).device
        plates = self._plates(b, device)
        slots = Slots.empty(
            (b,), cfg.max_objects, cfg.z_what_dim, cfg.hidden_dim, device, cfg.velocity_window
        )
        z_bg, h_bg = None, torch.zeros(b, cfg.hidden_dim, device=device)
        frames = []
        for t in range(n_frames):
            prop_mask = None
            if t > 0:
                slots = self._propagate(t, slots, plates, temperature)
                prop_mask = presence_mask(
                    nets.glimpse_decoder,
                    slots.what,
                    slots.box,
                    slots.pres,
                    cfg.image_size,
                    cfg.image_size,
                    memo=nets.mask_memo,
                    max_scale=cfg.max_scale,
                    floor=cfg.presence_floor,
                )
            disc = self._discover(
                t,
                b,
                prop_mask,
                slots if t > 0 else None,
                plates,
                temperature,
                frame_prior(disc_pres_prior, t),
                self._discovery_mask(discovery_mask, b, t),
                device,
            )
            slots, _ = merge(slots, disc, cfg.max_objects, cfg.merge)
            z_bg, h_bg = self._background(t, z_bg, h_bg, plates)
            bg_image = apply_flat(nets.bg_decoder, z_bg.squeeze(-2))  # (..., B, C, H, W)
            # (..., B, K, C+1, g, g); on the CPU absent slots are not decoded (presence_floor)
            glimpses = decode_glimpses(
                nets.glimpse_decoder, slots.what, slots.pres, cfg.presence_floor
            )
            observed = video is not None and t < video.shape[1]
            slots = observe_drawn(cfg, slots, glimpses[..., -1:, :, :], observed)
            frame, _, fg_mask = render(
                glimpses, slots.box, slots.pres, slots.depth, bg_image, cfg.max_scale
            )
            with plates["batch"]:
                obs = video[:, t].unsqueeze(-4) if observed else None
                pyro.sample(
                    sites.obs(t),
                    # the std as a device tensor made by a fill: a CUDA graph can capture it
                    dist.Normal(
                        frame.unsqueeze(-4), frame.new_full((), cfg.likelihood_std)
                    ).to_event(3),
                    obs=obs,
                )
            frames.append(frame)
            if record is not None:
                _, alpha = object_layers(
                    glimpses.detach(), slots.box.detach(), cfg.image_size, cfg.image_size
                )
                record.append(ModelFrame.of(slots, frame, bg_image, fg_mask, alpha))
        return torch.stack(frames, -4)

    # ----------------------------------------------------------------------------------------
    def _propagate(self, t: int, prev: Slots, plates, temperature: float) -> Slots:
        cfg = self.cfg
        out = apply_flat(self.nets.prior_tracker, prev.inputs(), prev.h)  # each (..., B, K, .)
        priors = TRANSITIONS[cfg.transition_prior](out, prev.what, prev.depth, prev.motion)
        gate = self._gate(prev)
        beta = self._propagation_probs(torch.sigmoid(out["pres_logit"]), gate)
        with plates["batch"], plates["slots"]:
            with self._alive(gate):
                fn = presence_dist(beta, cfg.presence, temperature)
                v = pyro.sample(sites.prop("pres", t), fn)
            pres = presence_value(v, cfg.presence) * gate
            with self._weight(pres):
                where = pyro.sample(sites.prop("where", t), _normal(*priors["where"]))
                what = pyro.sample(sites.prop("what", t), _normal(*priors["what"]))
                depth = pyro.sample(sites.prop("depth", t), _normal(*priors["depth"]))
        box, logit = self.coder.propagation(where, prev.box, prev.logit)
        pres = end_duplicate_tracks(cfg, pres, box, prev.ids)
        return Slots(
            pres=pres,
            box=box,
            logit=logit,
            **carry_motion(cfg, prev, where),
            what=what,
            depth=depth,
            h=out["h"],
            ids=prev.ids,
            discovered=torch.zeros_like(prev.discovered),
        )

    def _discover(self, t, b, prop_mask, prop, plates, temperature, rho, dmask, device) -> Slots:
        cfg = self.cfg
        hw = cfg.num_cells
        if torch.is_tensor(rho):  # a device tensor (CUDA-graph training): no host sync
            probs = rho.to(device=device, dtype=torch.float32).expand(b, hw)
        else:
            probs = torch.full((b, hw), float(rho), device=device)
        with plates["batch"], plates["cells"], self._mask(dmask):
            v = pyro.sample(sites.disc("pres", t), presence_dist(probs, cfg.presence, temperature))
            pres = presence_value(v, cfg.presence)
            with self._weight(pres):
                zeros = torch.zeros(4, device=device)
                where = pyro.sample(sites.disc("where", t), _normal(zeros, torch.ones_like(zeros)))
                zw = torch.zeros(cfg.z_what_dim, device=device)
                what = pyro.sample(sites.disc("what", t), _normal(zw, torch.ones_like(zw)))
                zd = torch.zeros(1, device=device)
                depth = pyro.sample(sites.disc("depth", t), _normal(zd, torch.ones_like(zd)))
        return self._proposals(t, pres, where, what, depth, prop_mask, dmask, prop)[0]

    def _background(self, t, z_prev, h, plates):
        """Sample ``bg_t`` (..., B, 1, Dbg) from its prior (:func:`priors.background_prior`)."""
        cfg = self.cfg
        prev = None if z_prev is None else z_prev.squeeze(-2)
        loc, scale, h = background_prior(
            cfg.background_prior, self.nets.bg_transition, prev, h, cfg.z_bg_dim
        )
        with plates["batch"]:
            z = pyro.sample(sites.bg(t), _normal(loc.unsqueeze(-2), scale.unsqueeze(-2)))
        return z, h


def frame_prior(disc_pres_prior, t: int):
    """The discovery presence prior of frame ``t``: ``disc_pres_prior`` itself (a float or a
    0-dim tensor), or its t-th entry when it is a list or tuple of per-frame values (the last
    entry repeats for later frames)."""
    if isinstance(disc_pres_prior, (list, tuple)):
        return disc_pres_prior[min(t, len(disc_pres_prior) - 1)]
    return disc_pres_prior


def _normal(loc: torch.Tensor, scale: torch.Tensor) -> dist.Distribution:
    return dist.Normal(loc, scale).to_event(1)
