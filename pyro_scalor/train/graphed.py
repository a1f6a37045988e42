"""A training step captured once as a CUDA graph and replayed (``TrainConfig.cuda_graph``).

On a GPU the eager SCALOR step is launch-bound: thousands of small kernels, each launched from
Python through Pyro's handlers, with the GPU idle most of the time. :class:`GraphedStep`
records the whole step (guide and model traces, the mean-field ELBO, backward, gradient
clipping and the optimiser update) as one CUDA graph and replays it, so the Python and launch
overhead is paid once. The step is the same Pyro program as the eager one: the graph is
captured from the model and guide as they are.

What replaying needs: fixed shapes (every batch has the shape of the first), inputs that live
in static device tensors (the video, the temperature, the discovery presence prior, the
discovery mask and the learning rate are copied in before each replay), and no host
synchronisation inside the step. :func:`mean_field_loss` is Pyro's ``TraceMeanField_ELBO``
loss without its host-side NaN check and float conversion; the model's input checks and the
mask memo step aside while a graph is being captured (``torch.cuda.is_current_stream_capturing``).
Random draws use CUDA's graph-safe generator, so every replay draws new noise.
"""

from __future__ import annotations

import logging

import torch
from pyro.distributions.util import scale_and_mask
from pyro.infer import TraceMeanField_ELBO
from torch.distributions import kl_divergence

log = logging.getLogger(__name__)

#: eager steps before the capture (CUDA graphs need the allocator and libraries warmed up)
GRAPH_WARMUP = 3


def mean_field_loss(model_trace, guide_trace) -> torch.Tensor:
    """Negative ELBO of one particle as ``TraceMeanField_ELBO`` computes it, as a tensor.

    Takes the model trace (log-probs computed) and the guide trace (score parts computed) of
    ``TraceMeanField_ELBO._get_trace``; returns the differentiable loss. Analytic KLs are used
    where registered (scaled and masked like the guide site), else the Monte Carlo term.
    """
    elbo = 0.0
    for name, site in model_trace.nodes.items():
        if site["type"] != "sample":
            continue
        if site["is_observed"]:
            elbo = elbo + site["log_prob_sum"]
            continue
        g = guide_trace.nodes[name]
        try:
            kl = kl_divergence(g["fn"], site["fn"])
        except NotImplementedError:
            elbo = elbo + site["log_prob_sum"] - g["score_parts"].entropy_term.sum()
            continue
        elbo = elbo - scale_and_mask(kl, scale=g["scale"], mask=g["mask"]).sum()
    if not torch.is_tensor(elbo):
        raise ValueError("the model has no sample sites")
    return -elbo


class GraphedStep:
    """One SVI step of ``model`` / ``guide`` captured as a CUDA graph, then replayed.

    Takes the ``TraceMeanField_ELBO`` objective (one particle), the model and guide, a
    *capturable* optimiser over the parameters to train (``torch.optim.RMSprop(...,
    capturable=True)`` or Adam, with a tensor learning rate; they are also the ones clipped), the
    clipping norm and the number of eager warm-up steps (run on a
    side stream before capture, as CUDA graphs require; they are real training steps). Calling
    it runs one step and returns ``(loss, grad_norm)`` as 0-dim device tensors.
    """

    def __init__(
        self,
        objective,
        model,
        guide,
        optimizer: torch.optim.Optimizer,
        clip_norm: float,
        *,
        warmup: int = GRAPH_WARMUP,
    ) -> None:
        if not isinstance(objective, TraceMeanField_ELBO) or objective.num_particles != 1:
            raise ValueError(
                "cuda_graph needs the 'elbo' objective (TraceMeanField_ELBO) with one particle"
            )
        if not all(g.get("capturable", False) for g in optimizer.param_groups):
            raise ValueError("cuda_graph needs an optimiser built with capturable=True")
        self.objective = objective
        self.model = model
        self.guide = guide
        self.params = [p for group in optimizer.param_groups for p in group["params"]]
        self.optimizer = optimizer
        self.clip_norm = clip_norm
        self.warmup = warmup
        self.calls = 0
        self.graph: torch.cuda.CUDAGraph | None = None
        self.static: dict[str, torch.Tensor | None] = {}
        self.out: tuple[torch.Tensor, torch.Tensor] | None = None
        self.stream: torch.cuda.Stream | None = None

    # ----------------------------------------------------------------------------------------
    def _body(self) -> tuple[torch.Tensor, torch.Tensor]:
        s = self.static
        kw = {"temperature": s["temperature"], "disc_pres_prior": s["disc_pres_prior"]}
        if s.get("discovery_mask") is not None:
            kw["discovery_mask"] = s["discovery_mask"]
        model_trace, guide_trace = self.objective._get_trace(
            self.model, self.guide, (s["video"],), kw
        )
        loss = mean_field_loss(model_trace, guide_trace)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(self.params, self.clip_norm)
        self.optimizer.step()
        return loss.detach(), norm

    def fits(self, video: torch.Tensor) -> bool:
        """Whether ``video`` has the shape this step was captured for (any, before capture)."""
        captured = self.static.get("video")
        if captured is None or captured.shape == video.shape:
            return True
        log.info("batch shape %s: the step is captured again", tuple(video.shape))
        return False

    def _load(self, video, temperature, disc_pres_prior, discovery_mask, lr) -> None:
        s = self.static
        if not s:
            dev = video.device
            s["video"] = torch.empty_like(video)
            s["temperature"] = torch.zeros((), device=dev)
            s["disc_pres_prior"] = torch.zeros((), device=dev)
            s["discovery_mask"] = None if discovery_mask is None else discovery_mask.clone()
        if video.shape != s["video"].shape:
            raise ValueError(
                f"a CUDA-graph step needs every batch to have the first one's shape "
                f"{tuple(s['video'].shape)}, got {tuple(video.shape)}"
            )
        if (discovery_mask is None) != (s["discovery_mask"] is None):
            raise ValueError("a CUDA-graph step needs a discovery mask at every step or never")
        s["video"].copy_(video)
        s["temperature"].fill_(float(temperature))
        s["disc_pres_prior"].fill_(float(disc_pres_prior))
        if discovery_mask is not None:
            s["discovery_mask"].copy_(discovery_mask)
        for group in self.optimizer.param_groups:
            group["lr"].fill_(float(lr))

    def __call__(
        self,
        video: torch.Tensor,
        *,
        temperature: float,
        disc_pres_prior: float,
        lr: float,
        discovery_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One training step on ``video`` (B, T, C, H, W) on the GPU; returns (loss, grad_norm)."""
        if video.device.type != "cuda":
            raise ValueError(
                f"a CUDA-graph step needs the video on a CUDA device, not {video.device}"
            )
        self._load(video, temperature, disc_pres_prior, discovery_mask, lr)
        self.calls += 1
        if self.graph is not None:
            self.graph.replay()
            return self.out
        if self.stream is None:
            self.stream = torch.cuda.Stream(device=video.device)
        self.stream.wait_stream(torch.cuda.current_stream(video.device))
        if self.calls <= self.warmup:
            # eager warm-up on a side stream (allocator and library workspaces settle there)
            with torch.cuda.stream(self.stream):
                self.optimizer.zero_grad(set_to_none=True)
                out = self._body()
            torch.cuda.current_stream(video.device).wait_stream(self.stream)
            return out
        self.optimizer.zero_grad(set_to_none=True)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, stream=self.stream):
            self.out = self._body()
        self.graph = graph
        log.info("captured the training step as a CUDA graph after %d eager steps", self.warmup)
        # capture records the kernels without running them: replay once for this step
        graph.replay()
        return self.out
