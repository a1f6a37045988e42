"""pyro-scalor: SCALOR (Jiang, Janghorbani, de Melo and Ahn, ICLR 2020) as a Pyro program.

SCALOR is a generative model of video in which existing objects are propagated by tracker
RNNs, new objects are proposed in parallel on an H x W grid and rejected where they overlap
propagated ones, a background evolves with its own transition, and everything is rendered
with depth-ordered alpha compositing.

Sub-packages:
    data     procedural moving-object videos with ground truth, real video
    metrics  tracking metrics (MOTA, MOTP, IDF1, precision, recall, count MAE)
    viz      pictures: boxes, trajectories, figure grids, GIFs
    model    the generative model, the guide, rendering and rejection
    train    SVI training, checkpoints, schedules
"""

__version__ = "0.1.0"
