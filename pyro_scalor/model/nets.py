"""Neural networks of the SCALOR model and guide (no Pyro code here).

Shapes use N for a flattened batch of frames or objects, F for feature channels, G for the
discovery grid side, g for the glimpse side, Dw for z_what, Dbg for z_bg, Hd for tracker states.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from pyro_scalor.model.config import ModelConfig
from pyro_scalor.model.render import MaskMemo

WHERE_STATE_DIM = 4  # (scale logit x, scale logit y, cx, cy)

#: Presence logits stay within +-8.8 (a presence within 1.5e-4 of 0 or 1 at most), the bound of
#: the official SCALOR code (``pres_logit_factor = 8.8`` in its ``common.py``, applied there as
#: ``8.8 * tanh(x)``); dividing inside the tanh here leaves small logits unchanged.
PRESENCE_LOGIT_BOUND = 8.8


#: On the CPU the glimpse networks run over at most this many glimpses at a time. Their
#: activations for a few hundred glimpses outgrow the CPU caches: decoding 512 glimpses (K = 128
#: slots, batch 4) forward and backward took 1.8x as long in one batch as in four of 128 (1
#: thread, torch 2.13). Each glimpse is computed alone either way (GroupNorm is per sample), so
#: the results do not change. Accelerators take the whole batch.
CPU_GLIMPSE_CHUNK = 128


def in_chunks(fn, x: torch.Tensor) -> torch.Tensor:
    """``fn(x)`` for a batch ``x`` (N, ...), in chunks of :data:`CPU_GLIMPSE_CHUNK` on the CPU."""
    if x.device.type != "cpu" or x.shape[0] <= CPU_GLIMPSE_CHUNK:
        return fn(x)
    return torch.cat([fn(part) for part in x.split(CPU_GLIMPSE_CHUNK)])


def _groups(channels: int) -> int:
    return math.gcd(channels, 8)


def conv_block(cin: int, cout: int, kernel: int, stride: int = 1) -> nn.Sequential:
    """Conv2d + GroupNorm + CELU, 'same' padding for odd kernels, halving for stride 2."""
    pad = (kernel - 1) // 2 if stride == 1 else (kernel - stride + 1) // 2
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, stride, pad), nn.GroupNorm(_groups(cout), cout), nn.CELU()
    )


def positive(x: torch.Tensor, minimum: float = 1e-3) -> torch.Tensor:
    """Softplus plus a floor: an unconstrained tensor to a valid standard deviation."""
    return F.softplus(x) + minimum


def bound_presence_logit(x: torch.Tensor) -> torch.Tensor:
    """A presence logit squashed into (-8.8, 8.8): see :data:`PRESENCE_LOGIT_BOUND`."""
    return PRESENCE_LOGIT_BOUND * torch.tanh(x / PRESENCE_LOGIT_BOUND)


def mlp(sizes: list[int]) -> nn.Sequential:
    """Linear layers with CELU between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.CELU())
    return nn.Sequential(*layers)


class ImageEncoder(nn.Module):
    """Frames (N, C, H, W) to a feature map (N, F, G, G) with stride-2 convolutions.

    Every stride-2 layer halves the resolution; a 3x3 layer follows each of the last two, so
    the receptive field spans several cells while full-resolution layers stay cheap.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        n_down = int(math.log2(cfg.image_size // cfg.grid_size))
        chans = [cfg.channels] + [min(cfg.feature_dim, 16 * 2**i) for i in range(n_down)]
        chans[-1] = cfg.feature_dim
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(chans[:-1], chans[1:])):
            layers.append(conv_block(a, b, 4, 2))
            if i >= n_down - 2:
                layers.append(conv_block(b, b, 3))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ConvLSTM(nn.Module):
    """Stacked convolutional LSTM over time on (N, F, G, G) maps; ``step`` advances one frame."""

    def __init__(self, channels: int, layers: int) -> None:
        super().__init__()
        self.cells = nn.ModuleList(
            nn.Conv2d(2 * channels, 4 * channels, 3, padding=1) for _ in range(layers)
        )

    def step(self, x: torch.Tensor, state: list[tuple[torch.Tensor, torch.Tensor]] | None):
        """One time step; returns the top layer's output and the new state list."""
        if state is None:
            zero = torch.zeros_like(x)
            state = [(zero, zero) for _ in self.cells]
        new_state = []
        for cell, (h, c) in zip(self.cells, state):
            i, f, o, g = cell(torch.cat([x, h], 1)).chunk(4, 1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            new_state.append((h, c))
            x = h
        return x, new_state


class MaskEncoder(nn.Module):
    """The propagated mask (N, 1, H, W), with ``cfg.discovery_residual`` also the unexplained
    frame (N, 1 + C, H, W), to a coarse feature map (N, 16, G, G)."""

    def __init__(self, cfg: ModelConfig, out: int = 16) -> None:
        super().__init__()
        self.grid = cfg.grid_size
        inp = 1 + (cfg.channels if cfg.discovery_residual else 0)
        self.net = nn.Sequential(conv_block(inp, out, 4, 2), conv_block(out, out, 3))

    def forward(self, mask: torch.Tensor) -> torch.Tensor:
        return self.net(F.adaptive_avg_pool2d(mask, 2 * self.grid))


class GlimpseEncoder(nn.Module):
    """Glimpses (N, C, g, g) to features (N, E) and a z_what posterior ``(loc, scale)``."""

    def __init__(self, cfg: ModelConfig, feature: int = 128) -> None:
        super().__init__()
        n_down = int(math.log2(cfg.encoder_glimpse_size // 4))
        chans = [cfg.channels] + [min(64, 16 * 2**i) for i in range(n_down)]
        layers: list[nn.Module] = [conv_block(a, b, 4, 2) for a, b in zip(chans[:-1], chans[1:])]
        self.conv = nn.Sequential(*layers)
        self.fc = nn.Sequential(nn.Linear(chans[-1] * 16, feature), nn.CELU())
        self.what = nn.Linear(feature, 2 * cfg.z_what_dim)
        self.feature_dim = feature

    def forward(self, glimpse: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Returns ``(features, what_loc, what_scale)``."""
        h = self.fc(in_chunks(self.conv, glimpse).flatten(1))
        loc, scale = self.what(h).chunk(2, -1)
        return h, loc, positive(scale)


class GlimpseDecoder(nn.Module):
    """z_what (N, Dw) to an RGB glimpse and an alpha mask, (N, C + 1, g, g) in (0, 1)."""

    def __init__(self, cfg: ModelConfig, width: int = 32) -> None:
        super().__init__()
        n_up = int(math.log2(cfg.glimpse_size // 4))
        self.fc = nn.Sequential(nn.Linear(cfg.z_what_dim, width * 16), nn.CELU())
        chans = [width] + [16] * (n_up - 1) + [cfg.decoder_last_channels]
        layers: list[nn.Module] = []
        for a, b in zip(chans[:-1], chans[1:]):
            layers += [nn.ConvTranspose2d(a, b, 4, 2, 1), nn.GroupNorm(_groups(b), b), nn.CELU()]
        layers.append(nn.Conv2d(chans[-1], cfg.channels + 1, 3, padding=1))
        self.conv = nn.Sequential(*layers)
        self.width = width

    def forward(self, what: torch.Tensor) -> torch.Tensor:
        h = self.fc(what).view(-1, self.width, 4, 4)
        return torch.sigmoid(in_chunks(self.conv, h))


class BackgroundEncoder(nn.Module):
    """Frame plus uncovered area (N, C + 1, H, W) to a z_bg posterior ``(loc, scale)``."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        n_down = int(math.log2(cfg.image_size // 4))
        chans = [cfg.channels + 1] + [min(64, 8 * 2**i) for i in range(n_down)]
        self.conv = nn.Sequential(*[conv_block(a, b, 4, 2) for a, b in zip(chans[:-1], chans[1:])])
        self.fc = nn.Linear(chans[-1] * 16, 2 * cfg.z_bg_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        loc, scale = self.fc(self.conv(x).flatten(1)).chunk(2, -1)
        return loc, positive(scale)


class BackgroundDecoder(nn.Module):
    """z_bg (N, Dbg) to a background image (N, C, H, W) in (0, 1).

    Upsampling from 4x4 with channels that shrink as the resolution grows (32 up to 16x16,
    then 16, then 8), so the full-resolution layers stay cheap. It paints at
    ``cfg.background_resolution`` and upsamples bilinearly to ``cfg.image_size`` when smaller.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        n_up = int(math.log2(cfg.background_resolution // 4))
        self.image_size = cfg.image_size
        self.fc = nn.Sequential(nn.Linear(cfg.z_bg_dim, 32 * 16), nn.CELU())
        # channels by output resolution r = 8, 16, 32, 64, ...: 32, 32, 16, 8, ...
        chans = [32] + [max(8, min(32, 512 // (4 * 2 ** (i + 1)))) for i in range(n_up)]
        layers: list[nn.Module] = []
        for a, b in zip(chans[:-1], chans[1:]):
            layers += [nn.Upsample(scale_factor=2), nn.Conv2d(a, b, 3, padding=1), nn.CELU()]
        layers.append(nn.Conv2d(chans[-1], cfg.channels, 3, padding=1))
        self.conv = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        logits = self.conv(self.fc(z).view(-1, 32, 4, 4))
        if logits.shape[-1] != self.image_size:
            size = (self.image_size, self.image_size)
            logits = F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
        return torch.sigmoid(logits)


class BackgroundTransition(nn.Module):
    """Learned transition prior p(z_bg_t | z_bg_<t): a GRU over past z_bg and a Normal head."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cell = nn.GRUCell(cfg.z_bg_dim, cfg.hidden_dim)
        self.head = nn.Linear(cfg.hidden_dim, 2 * cfg.z_bg_dim)

    def forward(self, z_prev: torch.Tensor, h: torch.Tensor):
        """Returns ``(loc, scale, new_state)`` for inputs (N, Dbg) and state (N, Hd)."""
        h = self.cell(z_prev, h)
        loc, scale = self.head(h).chunk(2, -1)
        return z_prev + loc, positive(scale), h


class PriorTracker(nn.Module):
    """The generative tracker: GRU state per object, presence and transition priors."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        d_in = cfg.z_what_dim + WHERE_STATE_DIM + 1
        self.cell = nn.GRUCell(d_in, cfg.hidden_dim)
        self.pres = nn.Linear(cfg.hidden_dim, 1)
        self.trans = nn.Linear(cfg.hidden_dim, 2 * (4 + cfg.z_what_dim + 1))
        nn.init.constant_(self.pres.bias, cfg.prop_presence_bias)
        nn.init.zeros_(self.trans.weight)
        nn.init.zeros_(self.trans.bias)
        self.dw = cfg.z_what_dim

    def forward(self, inputs: torch.Tensor, h: torch.Tensor) -> dict[str, torch.Tensor]:
        """Inputs (N, Dw + 5), state (N, Hd) to presence logit and where/what/depth priors."""
        h = self.cell(inputs, h)
        loc, scale = self.trans(h).chunk(2, -1)
        scale = positive(scale + 0.5413)  # softplus(0.5413) ~= 1: unit scale at initialisation
        dw = self.dw
        return {
            "h": h,
            "pres_logit": self.pres(h).squeeze(-1),
            "where": (loc[:, :4], scale[:, :4]),
            "what": (loc[:, 4 : 4 + dw], scale[:, 4 : 4 + dw]),
            "depth": (loc[:, 4 + dw :], scale[:, 4 + dw :]),
        }


class GuideTracker(nn.Module):
    """The inference tracker: attention on the feature map, GRU, where and presence heads."""

    def __init__(self, cfg: ModelConfig, glimpse_feature: int) -> None:
        super().__init__()
        a = cfg.attention_size
        att = cfg.hidden_dim
        self.att = nn.Sequential(nn.Linear(cfg.feature_dim * a * a, att), nn.CELU())
        d_prev = cfg.z_what_dim + WHERE_STATE_DIM + 1
        self.cell = nn.GRUCell(att + d_prev, cfg.hidden_dim)
        # presence logit (1), where loc (4), where scale (4)
        self.where = mlp([att + cfg.hidden_dim, cfg.hidden_dim, 9])
        self.depth = mlp([glimpse_feature + cfg.z_what_dim + cfg.hidden_dim, cfg.hidden_dim, 2])
        with torch.no_grad():
            self.where[-1].bias.zero_()
            self.where[-1].bias[0] = cfg.prop_presence_bias
        if cfg.propagation == "gated":
            # presence from the attended features, the state and the new where and what
            d = att + cfg.hidden_dim + WHERE_STATE_DIM + glimpse_feature + cfg.z_what_dim
            self.presence_head = mlp([d, cfg.hidden_dim, 1])
            with torch.no_grad():
                self.presence_head[-1].bias.fill_(cfg.prop_presence_bias)

    def step(self, att_features: torch.Tensor, prev: torch.Tensor, h: torch.Tensor):
        """Flattened attention crops (N, F*a*a), previous latents (N, Dw+5), state (N, Hd).

        Returns ``(h, pres_logit (N,), where_loc (N, 4), where_scale (N, 4), attended (N, A))``.
        """
        e = self.att(att_features)
        h = self.cell(torch.cat([e, prev], -1), h)
        out = self.where(torch.cat([e, h], -1))
        return h, bound_presence_logit(out[:, 0]), out[:, 1:5], positive(out[:, 5:]), e

    def presence(self, e, h, where_loc, g_feat, what_loc) -> torch.Tensor:
        """The propagation presence logit (N,) (propagation 'gated') from the attended features
        (N, A), the state (N, Hd), the where posterior mean (N, 4), and the features (N, E) and
        z_what posterior mean (N, Dw) of the glimpse at the new box."""
        out = self.presence_head(torch.cat([e, h, where_loc, g_feat, what_loc], -1))
        return bound_presence_logit(out[:, 0])

    def depth_posterior(self, g_feat: torch.Tensor, what: torch.Tensor, h: torch.Tensor):
        """Glimpse features, z_what and state to a depth posterior ``(loc, scale)``, (N, 1)."""
        out = self.depth(torch.cat([g_feat, what, h], -1))
        return out[:, :1], positive(out[:, 1:])


class Proposals(NamedTuple):
    """The discovery head's proposal parameters for each of the G*G cells.

    pres_logit (N, G*G) bounded presence logit; where_loc, where_scale (N, G*G, 4) the box
    latent's posterior; depth_loc, depth_scale (N, G*G, 1) the depth posterior.
    """

    pres_logit: torch.Tensor
    where_loc: torch.Tensor
    where_scale: torch.Tensor
    depth_loc: torch.Tensor
    depth_scale: torch.Tensor


class DiscoveryHead(nn.Module):
    """Per-cell proposal parameters from image features and the propagated-mask features.

    A 1x1 convolution stack with one output channel per number of :class:`Proposals`:
    presence logit (1), where loc (4), where scale (4), depth loc (1), depth scale (1).
    """

    #: output channels per part of :class:`Proposals`, in order
    PARTS = (1, WHERE_STATE_DIM, WHERE_STATE_DIM, 1, 1)

    def __init__(self, cfg: ModelConfig, mask_features: int = 16) -> None:
        super().__init__()
        c = cfg.feature_dim + mask_features
        self.net = nn.Sequential(
            nn.Conv2d(c, cfg.hidden_dim, 1),
            nn.CELU(),
            nn.Conv2d(cfg.hidden_dim, sum(self.PARTS), 1),
        )
        with torch.no_grad():
            self.net[-1].bias.zero_()
            self.net[-1].bias[0] = cfg.disc_presence_bias  # channel 0: the presence logit

    def forward(self, features: torch.Tensor) -> Proposals:
        """Features (N, F + 16, G, G) to :class:`Proposals` over the G*G cells (row-major)."""
        out = self.net(features).flatten(2).transpose(1, 2)  # (N, G*G, 11)
        pres, where_loc, where_scale, depth_loc, depth_scale = out.split(self.PARTS, -1)
        return Proposals(
            bound_presence_logit(pres.squeeze(-1)),
            where_loc,
            positive(where_scale),
            depth_loc,
            positive(depth_scale),
        )


class ScalorNets(nn.Module):
    """Every network of the model and the guide, registered with Pyro as one module."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        # generative model
        self.glimpse_decoder = GlimpseDecoder(cfg)
        self.bg_decoder = BackgroundDecoder(cfg)
        self.bg_transition = BackgroundTransition(cfg)
        self.prior_tracker = PriorTracker(cfg)
        # guide
        self.image_encoder = ImageEncoder(cfg)
        self.convlstm = ConvLSTM(cfg.feature_dim, cfg.convlstm_layers)
        self.mask_encoder = MaskEncoder(cfg)
        self.discovery_head = DiscoveryHead(cfg)
        self.glimpse_encoder = GlimpseEncoder(cfg)
        self.guide_tracker = GuideTracker(cfg, self.glimpse_encoder.feature_dim)
        self.bg_encoder = BackgroundEncoder(cfg)
        # no-gradient propagated-mask renders and proposal alpha decodes shared by the guide and
        # the model (see MaskMemo)
        self.mask_memo = MaskMemo()
        self.alpha_memo = MaskMemo(capacity=16)
