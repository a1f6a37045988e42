"""Tracking metrics: MOTA, MOTP (IoU and pixels), IDF1, precision, recall, count error.

``tracking_metrics`` evaluates a batch of predicted tracks against ground truth with
py-motmetrics; ``iou_matrix`` is the pairwise IoU used for matching.
"""

from pyro_scalor.metrics.boxes import box_centers, iou_matrix
from pyro_scalor.metrics.tracking import tracking_metrics

__all__ = ["tracking_metrics", "iou_matrix", "box_centers"]
