"""The SCALOR generative model (the paper's Eq. 3-5 and Algorithm 3) as a Pyro program.

Per frame t: propagation of the K tracker slots (t >= 1; presence Bernoulli beta = f(h) times the
previous presence, so an absent object stays absent; where/what/depth transition priors), discovery
of one proposal per grid cell under the ``cells`` plate, rejection of proposals overlapping the
propagated objects' mask, the top-K merge into slots, the background transition, and rendering
with a Normal likelihood. Site names are listed in :mod:`pyro_scalor.model.sites`.
"""

from __future__ import annotations

import pyro
import pyro.distributions as dist
import torch

from pyro_scalor.model import sites
from pyro_scalor.model.distributions import presence_dist, presence_value
from pyro_scalor.model.geometry import flatten_lead
from pyro_scalor.model.priors import TRANSITIONS
from pyro_scalor.model.program import ScalorProgram
from pyro_scalor.model.rejection import (
    accept_proposals,
    suppress_duplicate_tracks,
    suppress_duplicates,
)
from pyro_scalor.model.render import composite, decode_glimpses, object_layers, presence_mask
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
        record: dict | None = None,
    ) -> torch.Tensor:
        """Run the generative process; returns the rendered frames (..., B, T, C, H, W)."""
        self._register()
        video, b, n_frames = self._shape(video, batch_size, num_frames)
        self._check_discovery_mask(discovery_mask, b, n_frames)
        cfg, nets = self.cfg, self.nets
        device = next(nets.parameters()).device
        plates = self._plates(b, device)
        slots = Slots.empty((b,), cfg.max_objects, cfg.z_what_dim, cfg.hidden_dim, device)
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
                )
            disc = self._discover(
                t,
                b,
                prop_mask,
                slots if t > 0 else None,
                plates,
                temperature,
                disc_pres_prior,
                self._discovery_mask(discovery_mask, b, t),
                device,
            )
            slots = merge(slots, disc, cfg.max_objects)
            z_bg, h_bg = self._background(t, b, z_bg, h_bg, plates, device)
            bg_image = _decode_flat(nets.bg_decoder, z_bg.squeeze(-2), 1)
            glimpses = decode_glimpses(nets.glimpse_decoder, slots.what)
            rgb, alpha = object_layers(glimpses, slots.box, cfg.image_size, cfg.image_size)
            frame, _, fg_mask = composite(rgb, alpha, slots.pres, slots.depth, bg_image)
            with plates["batch"]:
                observed = video is not None and t < video.shape[1]
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
                _record(record, frame, bg_image, fg_mask, slots, alpha)
        return torch.stack(frames, -4)

    # ----------------------------------------------------------------------------------------
    def _propagate(self, t: int, prev: Slots, plates, temperature: float) -> Slots:
        cfg = self.cfg
        flat_in, lead = flatten_lead(prev.inputs(), 1)
        flat_h, _ = flatten_lead(prev.h, 1)
        out = self.nets.prior_tracker(flat_in, flat_h)
        out = {k: _unflatten(v, lead) for k, v in out.items()}
        priors = TRANSITIONS[cfg.transition_prior](out, prev.what, prev.depth)
        beta = torch.sigmoid(out["pres_logit"]) * prev.pres
        with plates["batch"], plates["slots"]:
            v = pyro.sample(sites.prop("pres", t), presence_dist(beta, cfg.presence, temperature))
            pres = presence_value(v, cfg.presence) * prev.pres
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
        return discovered_slots(self, t, pres, where, what, depth, prop_mask, dmask, prop)[0]

    def _background(self, t, b, z_prev, h, plates, device):
        """Sample ``bg_t`` from its prior: standard normal at t = 0 or if 'fixed', else the GRU."""
        cfg = self.cfg
        prev = None if z_prev is None else z_prev.squeeze(-2)
        if cfg.background_prior == "learned" and prev is not None:
            h = h.expand(prev.shape[:-1] + h.shape[-1:])
            loc, scale, h = _apply_flat(self.nets.bg_transition, prev, h)
        else:
            loc = torch.zeros(b, cfg.z_bg_dim, device=device)
            scale = torch.ones_like(loc)
        with plates["batch"]:
            z = pyro.sample(sites.bg(t), _normal(loc.unsqueeze(-2), scale.unsqueeze(-2)))
        return z, h


def end_duplicate_tracks(cfg, pres: torch.Tensor, box: torch.Tensor, ids: torch.Tensor):
    """Propagated presence (..., K) with duplicate trackers ended (presence 0) when
    ``cfg.suppression`` is on and ``cfg.track_suppression_threshold`` > 0; else ``pres``.

    Takes the new boxes (..., K, 4) and the track ids (..., K); see
    :func:`pyro_scalor.model.rejection.suppress_duplicate_tracks`.
    """
    if not (cfg.suppression and cfg.track_suppression_threshold > 0):
        return pres
    return pres * suppress_duplicate_tracks(pres, box, ids, cfg.track_suppression_threshold)


def discovered_slots(
    program: ScalorProgram, t, pres, where, what, depth, prop_mask, dmask, prop=None
):
    """Turn discovery samples (..., B, HW, .) into candidate slots, applying rejection.

    Rejection drops proposals explained by the propagated mask; then, if ``cfg.suppression``,
    duplicate suppression drops proposals whose box overlaps a more present proposal's or a
    present propagated object's (``prop``, the propagated :class:`Slots`, None at t = 0). Returns
    ``(slots, num_rejected)``: num_rejected (..., B) counts proposals with presence > 0.5 that
    either rule dropped.
    """
    cfg = program.cfg
    box, logit = program.coder.discovery(where)
    num_rejected = torch.zeros(pres.shape[:-1], device=pres.device)
    if cfg.rejection and prop_mask is not None:
        accept = accept_proposals(prop_mask, box, cfg.rejection_threshold, cfg.rejection_alpha)
        num_rejected = ((pres > 0.5) & (accept < 0.5)).sum(-1).to(pres.dtype)
        pres = pres * accept
    if dmask is not None:
        pres = pres * dmask.to(pres.dtype)
    if cfg.suppression:
        kept = (None, None) if prop is None else (prop.pres, prop.box)
        keep = suppress_duplicates(pres, box, cfg.suppression_threshold, *kept)
        num_rejected = num_rejected + ((pres > 0.5) & (keep < 0.5)).sum(-1).to(pres.dtype)
        pres = pres * keep
    hw = cfg.num_cells
    ids = torch.arange(hw, device=pres.device) + 1 + t * hw
    lead = pres.shape
    slots = Slots(
        pres=pres,
        box=box,
        logit=logit,
        what=what,
        depth=depth,
        h=torch.zeros(lead + (cfg.hidden_dim,), device=pres.device),
        ids=ids.expand(lead),
        discovered=torch.ones(lead, dtype=torch.bool, device=pres.device),
    )
    return slots, num_rejected


def mask_boxes(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Tight pixel boxes of boolean masks (..., H, W).

    Returns ``(boxes (..., 4) as (x_min, y_min, x_max, y_max) with max exclusive, areas (...))``;
    an empty mask gives a zero box and area 0.
    """
    h, w = mask.shape[-2:]
    cols, rows = mask.any(-2), mask.any(-1)
    area = mask.sum((-1, -2)).to(torch.float32)

    def first(v: torch.Tensor) -> torch.Tensor:
        return v.float().argmax(-1).to(torch.float32)

    x0, x1 = first(cols), w - first(cols.flip(-1))
    y0, y1 = first(rows), h - first(rows.flip(-1))
    boxes = torch.stack([x0, y0, x1, y1], -1) * (area > 0).unsqueeze(-1)
    return boxes, area


def _apply_flat(module, *xs: torch.Tensor):
    """Apply ``module`` to (..., D) inputs flattened over their leading dims; restore them."""
    lead = xs[0].shape[:-1]
    out = module(*(x.reshape(-1, x.shape[-1]) for x in xs))
    return tuple(o.view(lead + o.shape[-1:]) for o in out)


def _normal(loc: torch.Tensor, scale: torch.Tensor) -> dist.Distribution:
    return dist.Normal(loc, scale).to_event(1)


def _unflatten(v, lead):
    if isinstance(v, tuple):
        return tuple(_unflatten(x, lead) for x in v)
    return v.reshape(lead + v.shape[1:])


def _decode_flat(module, x: torch.Tensor, keep: int) -> torch.Tensor:
    flat, lead = flatten_lead(x, keep)
    out = module(flat)
    return out.view(lead + out.shape[1:])


def _record(record: dict, frame, bg_image, fg_mask, slots: Slots, alpha) -> None:
    mask_box, mask_area = mask_boxes(alpha.squeeze(-3) > 0.5)
    for name, value in (
        ("mask_box", mask_box),
        ("mask_area", mask_area),
        ("reconstruction", frame),
        ("background", bg_image),
        ("foreground_mask", fg_mask),
        ("pres", slots.pres),
        ("box", slots.box),
        ("ids", slots.ids),
        ("discovered", slots.discovered),
        ("depth", slots.depth),
    ):
        record.setdefault(name, []).append(value.detach())
