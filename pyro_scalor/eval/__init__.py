"""Scores of a trained SCALOR: tracking metrics (:mod:`~pyro_scalor.eval.tracking`), the
negative log-likelihood (:mod:`~pyro_scalor.eval.nll`) and the errors of conditional generation
over the imagined horizon (:mod:`~pyro_scalor.eval.horizon`)."""
