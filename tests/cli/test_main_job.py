"""Smoke test of ``pyro-scalor main`` (the README's main job) at a tiny size."""

from __future__ import annotations

import json

import torch

from pyro_scalor.cli import main
from pyro_scalor.eval.tracking import METRIC_KEYS


def test_main_job_trains_evaluates_and_writes_pictures(tmp_path, capsys):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        args = "main --preset smoke --eval-sequences 2 --no-progress --device cpu".split()
        args += ["--out", str(tmp_path / "out"), "--run-dir", str(tmp_path / "run")]
        args += ["--cache-dir", str(tmp_path / "cache")]
        assert main(args) == 0
        metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
        for key in METRIC_KEYS:
            assert key in metrics
        assert metrics["checkpoint_step"] == 3
        pictures = [p.suffix for p in (tmp_path / "out" / "pictures").iterdir()]
        assert ".png" in pictures and ".gif" in pictures
        # a second run finds the finished checkpoint and only evaluates
        assert main(args) == 0
        # a finished run of another recipe is refused, naming the difference
        ckpt = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)
        ckpt["model_config"]["transition_prior"] = "fixed"
        torch.save(ckpt, tmp_path / "run" / "checkpoint.pt")
        assert main(args) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "transition_prior 'fixed'" in err[0], err
    finally:
        torch.set_num_threads(threads)


def test_main_job_replays_the_step_as_a_cuda_graph_only_on_a_gpu():
    from pyro_scalor.cli.main_job import train_config_for
    from pyro_scalor.train.config import RUN_PRESETS

    cfg = RUN_PRESETS["cpu-default"].train
    assert train_config_for(cfg, "cuda").cuda_graph
    assert train_config_for(cfg, torch.device("cuda", 0)).cuda_graph
    assert not train_config_for(cfg, "cuda", cuda_graph=False).cuda_graph
    assert not train_config_for(cfg, "cpu").cuda_graph
    # a GPU preset on the CPU runs eagerly; objectives a graph cannot run stay eager
    assert not train_config_for(RUN_PRESETS["gpu-default"].train, "cpu").cuda_graph
    assert not train_config_for(cfg.replace(objective="iwae"), "cuda").cuda_graph
    assert train_config_for(cfg, "cuda").replace(cuda_graph=False) == cfg
