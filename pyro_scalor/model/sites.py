"""The stable names of every Pyro sample site, per frame and role.

=====================  ===============================  ===========================================
site                   value shape                       meaning
=====================  ===============================  ===========================================
``prop_pres_{t}``      (B, K)                            presence of tracker slot k at frame t >= 1
``prop_where_{t}``     (B, K, 4)                         change of the slot's box (scale, centre)
``prop_what_{t}``      (B, K, Dw)                        appearance of the propagated object
``prop_depth_{t}``     (B, K, 1)                         depth of the propagated object
``disc_pres_{t}``      (B, H*W)                          proposal presence of each grid cell
``disc_where_{t}``     (B, H*W, 4)                       proposal box (scale logits, cell offsets)
``disc_what_{t}``      (B, H*W, Dw)                      proposal appearance
``disc_depth_{t}``     (B, H*W, 1)                       proposal depth
``bg_{t}``             (B, 1, Dbg)                       background latent
``obs_{t}``            (B, 1, C, H, W)                   the observed frame (model only)
=====================  ===============================  ===========================================

Plates: ``batch`` (dim -2) encloses every site; ``slots`` (dim -1, size K) encloses the prop
sites and ``cells`` (dim -1, size H*W) the disc sites. With relaxed presence a pres site's value
is the *logit* of the relaxed sample (presence = sigmoid(value)); with hard presence it is 0/1.
A particle plate (``vectorize_particles``) adds one dim on the left of every shape.
"""

from __future__ import annotations

PROP_ROLES = ("pres", "where", "what", "depth")
DISC_ROLES = ("pres", "where", "what", "depth")


def prop(role: str, t: int) -> str:
    """Site name of a propagation latent at frame t (t >= 1)."""
    return f"prop_{role}_{t}"


def disc(role: str, t: int) -> str:
    """Site name of a discovery latent at frame t."""
    return f"disc_{role}_{t}"


def bg(t: int) -> str:
    """Site name of the background latent at frame t."""
    return f"bg_{t}"


def obs(t: int) -> str:
    """Site name of the observed frame t."""
    return f"obs_{t}"


def latent_sites(num_frames: int) -> list[str]:
    """All latent site names of a sequence of ``num_frames`` frames, in sampling order."""
    names: list[str] = []
    for t in range(num_frames):
        if t > 0:
            names += [prop(r, t) for r in PROP_ROLES]
        names += [disc(r, t) for r in DISC_ROLES]
        names.append(bg(t))
    return names
