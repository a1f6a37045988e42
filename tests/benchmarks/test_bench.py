"""``pyro-scalor bench`` (the harness in benchmarks/): fixed-count videos, smoke runs, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from scipy import ndimage

from pyro_scalor.cli import main
from pyro_scalor.cli.bench import load_harness

harness = load_harness()
fixed_count_video, format_table = harness.fixed_count_video, harness.format_table


@pytest.mark.parametrize(("count", "frames"), [(1, 3), (10, 8), (60, 8), (100, 4)])
def test_fixed_count_video_has_exactly_n_objects_per_frame(count, frames):
    video, boxes = fixed_count_video(count, frames, batch_size=2, seed=3)
    assert video.shape == (2, frames, 3, 64, 64) and video.dtype == torch.float32
    assert boxes.shape == (2, frames, count, 4)
    assert float(video.min()) >= 0.0 and float(video.max()) <= 1.0
    x0, y0, x1, y1 = boxes.unbind(-1)
    assert bool((x0 >= 0).all() and (y0 >= 0).all() and (x1 <= 64).all() and (y1 <= 64).all())
    sides = x1 - x0
    assert bool((sides == y1 - y0).all() and (sides >= 5).all() and (sides <= 8).all())
    for b in range(2):
        for t in range(frames):
            on = video[b, t].amax(0).numpy() > 0
            # 8-connectivity: even objects touching at a corner would merge into one component
            _, found = ndimage.label(on, structure=np.ones((3, 3)))
            assert found == count
            drawn = sum(int(s) ** 2 for s in sides[b, t])
            assert int(on.sum()) == drawn  # no overlaps: every object fully visible
    if count <= 60:  # the objects move (at 100 objects the 6 px cells leave no room)
        assert not torch.equal(boxes[:, 0], boxes[:, -1])


def test_fixed_count_video_is_deterministic_and_grey_when_asked():
    a, ba = fixed_count_video(10, 4, seed=7)
    b, bb = fixed_count_video(10, 4, seed=7)
    c, _ = fixed_count_video(10, 4, seed=8)
    assert torch.equal(a, b) and torch.equal(ba, bb) and not torch.equal(a, c)
    grey, _ = fixed_count_video(10, 4, channels=1, image_size=32, seed=7)
    assert grey.shape == (1, 4, 1, 32, 32)


def test_fixed_count_video_rejects_too_many_objects():
    with pytest.raises(ValueError, match="do not fit"):
        fixed_count_video(200, 2)


def test_bench_smoke_run_writes_the_report(tmp_path, capsys):
    out = tmp_path / "bench.json"
    code = main(
        [
            "-q",
            "bench",
            "--model-preset",
            "tiny",
            "--quick",
            "--batch-size",
            "2",
            "--frames",
            "2",
            "--num-sequences",
            "2",
            "--device",
            "cpu",
            # one thread: two threads on a shared 2-core machine can be 10x slower (spin waits)
            "--threads",
            "1",
            "--json",
            str(out),
            "--cache-dir",
            str(tmp_path / "cache"),
        ]
    )
    assert code == 0
    report = json.loads(out.read_text())
    assert set(report) >= {"machine", "config", "results", "ratios", "targets", "checks"}
    assert report["complete"] is True
    assert report["machine"]["torch"] == torch.__version__
    assert report["config"]["model"]["max_objects"] == 4
    assert report["config"]["setting"]["batch_size"] == 2
    assert report["config"]["setting"]["order"] == "interleaved"
    inputs = [r["input"] for r in report["results"]]
    assert inputs == ["dsprites-ld", "dsprites-vhd", "fixed-10", "fixed-60"]
    for r in report["results"]:
        assert r["device"] == "cpu" and r["config"] == "tiny" and r["max_objects"] == 4
        assert r["frames"] == 2 and r["batch_size"] == 2
        assert len(r["step_time_all_s"]) == 2 and len(r["warmup_time_all_s"]) == 1
        assert all(t > 0 for t in r["step_time_all_s"])
        assert r["step_time_min_s"] <= r["step_time_median_s"] <= r["step_time_max_s"]
        assert r["peak_memory_mb"] >= 0 and r["peak_memory_total_mb"] > 0
    per_frame = {r["input"]: r["objects_per_frame"] for r in report["results"]}
    assert per_frame["fixed-10"] == 10 and per_frame["fixed-60"] == 60
    assert per_frame["dsprites-vhd"] > 5 * per_frame["dsprites-ld"] > 0
    ratios = report["ratios"]["cpu"]
    assert ratios["vhd_over_ld"] > 0 and ratios["fixed60_over_fixed10"] > 0
    assert report["targets"] == {"cpu_reference_median_s": 1.2, "vhd_over_ld_max": 1.2}
    assert report["checks"]["reference_setting"] is False
    assert report["checks"]["cpu_reference_ok"] is None  # not the reference setting
    table = capsys.readouterr().out
    assert table.strip() == format_table(report)
    assert "fixed-60" in table and "vhd_over_ld" in table


def test_bench_sequential_order_and_fixed_counts_only(tmp_path, capsys):
    out = tmp_path / "bench.json"
    argv = ["-q", "bench", "--model-preset", "tiny", "--max-objects", "2", "--presets"]
    argv += ["--fixed-counts", "3", "--batch-size", "1", "--frames", "2", "--warmup", "1"]
    argv += ["--steps", "3", "--threads", "1", "--device", "cpu", "--sequential"]
    assert main([*argv, "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["config"]["setting"]["order"] == "sequential"
    (row,) = report["results"]
    assert (
        row["input"] == "fixed-3"
        and row["max_objects"] == 2
        and row["config"] == "tiny+max_objects=2"
    )
    assert len(row["step_time_all_s"]) == 3
    assert report["ratios"] == {"cpu": {"vhd_over_ld": None}}
    assert report["checks"]["cpu_reference_median_s"] is None
    assert "fixed-3" in capsys.readouterr().out
    assert [p.name for p in tmp_path.iterdir()] == ["bench.json"]  # no temporary files left


def test_bench_rejects_nothing_to_do(capsys):
    argv = ["bench", "--model-preset", "tiny", "--presets", "--fixed-counts", "--device", "cpu"]
    assert main(argv) == 2
    assert "nothing to benchmark" in capsys.readouterr().err


def test_bench_without_the_harness_folder_says_so_in_one_line(tmp_path, monkeypatch, capsys):
    import sys

    import pyro_scalor.cli.bench as entry

    monkeypatch.setattr(entry, "benchmarks_dir", lambda: tmp_path / "benchmarks")
    monkeypatch.delitem(sys.modules, entry.HARNESS_MODULE)
    assert main(["bench", "--quick", "--json", str(tmp_path / "b.json")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("pyro-scalor bench: error: the benchmark harness is not installed")
    assert err.count("\n") == 1 and str(tmp_path / "benchmarks") in err
