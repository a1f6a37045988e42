"""Per-term breakdown of the objective and per-frame object counts, for logging."""

from __future__ import annotations

import pyro.poutine as poutine
import torch
from torch.distributions import kl_divergence

from pyro_scalor.model.records import GuideFrame, stack_frames


def _site_group(name: str) -> str:
    parts = name.split("_")
    return "_".join(parts[:-1])  # e.g. prop_where_3 -> prop_where, bg_0 -> bg, obs_2 -> obs


@torch.no_grad()
def loss_terms(model, guide, video: torch.Tensor, **kwargs) -> dict[str, float]:
    """One-sample estimate of each term of the negative ELBO, per sequence.

    Returns ``{"nll": -log p(x|z), "kl_<role>": KL of that site group, "loss": total}``; KLs are
    analytic where registered (scaled by presence like the objective), else log q - log p.
    """
    frames: list[GuideFrame] = []
    g_tr = poutine.trace(guide).get_trace(video, record=frames, **kwargs)
    m_tr = poutine.trace(poutine.replay(model, trace=g_tr)).get_trace(video, **kwargs)
    terms: dict[str, float] = {}
    b = video.shape[0]
    for name, site in m_tr.nodes.items():
        if (
            site["type"] != "sample"
            or name in ("batch", "slots", "cells")
            or site.get("infer", {}).get("_do_not_trace")
        ):
            continue
        if site["is_observed"]:
            terms["nll"] = terms.get("nll", 0.0) - float(site["fn"].log_prob(site["value"]).sum())
            continue
        if name not in g_tr.nodes:
            continue
        g = g_tr.nodes[name]
        try:
            kl = kl_divergence(g["fn"], site["fn"])
        except NotImplementedError:
            kl = g["fn"].log_prob(g["value"]) - site["fn"].log_prob(site["value"])
        scale = g["scale"]
        mask = g["mask"]
        if mask is not None:
            kl = kl * mask
        key = "kl_" + _site_group(name)
        terms[key] = terms.get(key, 0.0) + float((kl * scale).sum())
    out = {k: v / b for k, v in terms.items()}
    out["loss"] = sum(out.values())
    g = stack_frames(frames)  # every field (B, T, ...)
    out["num_propagated"] = float(g.num_propagated.mean())
    out["num_discovered"] = float(g.num_discovered.mean())
    out["num_rejected"] = float(g.num_rejected.mean())
    out["num_dropped_discoveries"] = float(g.num_dropped.mean())
    out["num_objects"] = float((g.presence > 0.5).float().sum(-1).mean())
    return out
