"""``pyro-scalor track``: users' videos (.npy, PNG folder, mp4) to MOTChallenge tracks."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch
from PIL import Image

from pyro_scalor.api import Scalor
from pyro_scalor.cli import main
from pyro_scalor.data import load_dataset
from pyro_scalor.data.video_files import fit_frames, read_video
from pyro_scalor.metrics.mot import load_mot, mot_rows

needs_pyav = pytest.mark.skipif(
    importlib.util.find_spec("av") is None, reason='needs pip install "pyro-scalor[video]"'
)
# the fixtures cache and checkpoint (a smoke-trained run directory): tests/conftest.py


@pytest.fixture(scope="module")
def frames(cache) -> np.ndarray:
    """One smoke test sequence as uint8 (T, H, W, 3)."""
    video = load_dataset("smoke", "test", cache_dir=cache)[0]["video"]  # (T, 3, 64, 64)
    return np.round(video.permute(0, 2, 3, 1).numpy() * 255).astype(np.uint8)


def track(checkpoint, video, out, *extra) -> int:
    return main(
        ["track", str(checkpoint), str(video), "--out", str(out), "--device", "cpu", *extra]
    )


def expected_rows(checkpoint, frames: np.ndarray) -> np.ndarray:
    """The MOT rows of tracking ``frames`` directly through the API."""
    scalor = Scalor.from_checkpoint(checkpoint, device="cpu")
    video = torch.from_numpy(frames).permute(0, 3, 1, 2).float().div(255.0)[None]
    res = scalor.track(video)
    assert int(res.valid.sum()) > 0  # the comparison below is not vacuous
    return mot_rows(res.boxes[0], res.ids[0], res.valid[0], res.presence[0])


def test_npy_tracks_in_mot_format(checkpoint, frames, tmp_path, capsys):
    path = tmp_path / "clip.npy"
    np.save(path, frames)  # uint8 (T, H, W, C)
    assert track(checkpoint, path, tmp_path / "out") == 0
    out = capsys.readouterr().out
    assert "tracked 4 frames (64x64 -> 64x64, crop center)" in out
    lines = (tmp_path / "out" / "tracks.txt").read_text().splitlines()
    rows = load_mot(tmp_path / "out" / "tracks.txt")
    want = expected_rows(checkpoint, frames)
    assert len(lines) == len(rows) == len(want)  # one row per present object and frame
    for line in lines:
        fields = line.split(",")
        assert len(fields) == 10 and fields[-3:] == ["-1", "-1", "-1"]
        assert fields[0].isdigit() and fields[1].isdigit()
    np.testing.assert_allclose(rows[:, :6], want[:, :6], atol=0.006)  # boxes in pixels
    np.testing.assert_allclose(rows[:, 6], want[:, 6], atol=6e-5)  # conf = presence
    assert rows[:, 0].min() >= 1 and rows[:, 0].max() <= 4  # frames counted from 1
    pairs = {(int(f), int(i)) for f, i in rows[:, :2]}
    assert len(pairs) == len(rows)  # one box per id and frame
    x, y, w, h = rows[:, 2:6].T
    assert (w > 0).all() and (h > 0).all() and (x >= 0).all() and (x + w <= 64).all()
    assert (y >= 0).all() and (y + h <= 64).all()
    for name in ("tracking_0.png", "tracking_0.gif"):
        assert (tmp_path / "out" / name).stat().st_size > 1000


def test_npy_channel_first_float_and_png_folder_give_the_same_tracks(checkpoint, frames, tmp_path):
    reference = tmp_path / "ref"
    np.save(tmp_path / "a.npy", frames)
    assert track(checkpoint, tmp_path / "a.npy", reference) == 0
    first = np.moveaxis(frames, -1, 1).astype(np.float32) / 255.0  # (T, C, H, W) in [0, 1]
    np.save(tmp_path / "b.npy", first)
    assert track(checkpoint, tmp_path / "b.npy", tmp_path / "float") == 0
    folder = tmp_path / "pngs"
    folder.mkdir()
    for t, name in enumerate(["frame_1", "frame_2", "frame_9", "frame_10"]):  # natural order
        Image.fromarray(frames[t]).save(folder / f"{name}.png")
    (folder / "notes.txt").write_text("not a frame")
    assert track(checkpoint, folder, tmp_path / "png") == 0
    want = (reference / "tracks.txt").read_text()
    assert want
    assert (tmp_path / "float" / "tracks.txt").read_text() == want
    assert (tmp_path / "png" / "tracks.txt").read_text() == want


def test_max_frames_and_crop_none(checkpoint, frames, tmp_path):
    wide = np.concatenate([frames, frames[:, :, :32]], axis=2)  # (T, 64, 96, 3)
    np.save(tmp_path / "wide.npy", wide)
    args = ("--max-frames", "2", "--crop", "none")
    assert track(checkpoint, tmp_path / "wide.npy", tmp_path / "out", *args) == 0
    rows = load_mot(tmp_path / "out" / "tracks.txt")
    assert len(rows) and set(rows[:, 0]) <= {1.0, 2.0}


@needs_pyav
def test_mp4_written_with_pyav_is_centre_cropped(checkpoint, frames, tmp_path):
    import av

    path = tmp_path / "clip.mp4"
    padded = np.pad(frames, ((0, 0), (0, 0), (16, 16), (0, 0)))  # (T, 64, 96, 3)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=4)
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
        stream.options = {"crf": "0"}  # lossless: the crop gives back the original frames
        for frame in padded:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    decoded = read_video(path)
    assert decoded.shape == (4, 64, 96, 3)
    fitted = fit_frames(decoded, 64, "center")
    assert fitted.shape == (4, 3, 64, 64)
    original = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255.0
    assert float((fitted - original).abs().mean()) < 0.02  # colour conversion only
    assert track(checkpoint, path, tmp_path / "out") == 0
    rows = load_mot(tmp_path / "out" / "tracks.txt")
    assert len(rows) > 0 and set(rows[:, 0]) <= {1.0, 2.0, 3.0, 4.0}


def test_centre_crop_keeps_the_middle_square():
    frames = np.random.default_rng(0).random((2, 64, 96, 3), dtype=np.float32)
    fitted = fit_frames(frames, 64, "center")
    np.testing.assert_array_equal(fitted.permute(0, 2, 3, 1).numpy(), frames[:, :, 16:80])
    assert fit_frames(frames, 32, "none").shape == (2, 3, 32, 32)
    with pytest.raises(ValueError, match="unknown crop 'left'"):
        fit_frames(frames, 64, "left")


def _bad_inputs(tmp_path, frames):
    empty = tmp_path / "empty"
    empty.mkdir()
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "0.png").write_bytes(b"not a png")
    sizes = tmp_path / "sizes"
    sizes.mkdir()
    Image.fromarray(frames[0]).save(sizes / "0.png")
    Image.fromarray(frames[0][:32]).save(sizes / "1.png")
    np.save(tmp_path / "flat.npy", frames[..., 0])  # (T, H, W): no channel axis
    np.save(tmp_path / "bytes.npy", frames.astype(np.float32))  # floats in 0..255
    np.save(tmp_path / "ints.npy", frames.astype(np.int64))
    (tmp_path / "garbage.npy").write_bytes(b"\x93NUMPY garbage")
    (tmp_path / "garbage.mp4").write_bytes(b"\x00" * 1000)
    Image.fromarray(frames[0]).save(tmp_path / "one.png")
    return {
        tmp_path / "missing.mp4": "no video at",
        empty: "has no .png frames",
        broken: "is not a readable PNG",
        sizes: "every frame needs the same size",
        tmp_path / "flat.npy": "holds an array of shape (4, 64, 64)",
        tmp_path / "bytes.npy": "holds values outside [0, 1]",
        tmp_path / "ints.npy": "holds int64 values",
        tmp_path / "garbage.npy": "is not a readable .npy array",
        tmp_path / "garbage.mp4": "is not a readable video",
        tmp_path / "one.png": "is one picture",
    }


def test_bad_videos_fail_with_one_line(checkpoint, frames, tmp_path, capsys):
    bad = _bad_inputs(tmp_path, frames)
    if importlib.util.find_spec("av") is None:
        bad.pop(tmp_path / "garbage.mp4")
    for path, message in bad.items():
        assert track(checkpoint, path, tmp_path / "out") == 2, path
        err = capsys.readouterr().err
        assert err.startswith("pyro-scalor track: error: ") and message in err, (path, err)
        assert err.count("\n") == 1, err
    assert not (tmp_path / "out" / "tracks.txt").exists()


def test_wrong_size_device_and_missing_pyav(checkpoint, frames, tmp_path, capsys, monkeypatch):
    np.save(tmp_path / "clip.npy", frames)
    assert track(checkpoint, tmp_path / "clip.npy", tmp_path / "o", "--size", "32") == 2
    assert "the model takes 64x64 frames; use --size 64" in capsys.readouterr().err
    assert main(["track", str(checkpoint), str(tmp_path / "clip.npy"), "--out", "o",
                 "--device", "banana"]) == 2  # fmt: skip
    assert "unknown device 'banana'" in capsys.readouterr().err
    (tmp_path / "clip.mp4").write_bytes(b"\x00")
    monkeypatch.setitem(__import__("sys").modules, "av", None)
    assert track(checkpoint, tmp_path / "clip.mp4", tmp_path / "o") == 2
    err = capsys.readouterr().err
    assert 'pip install "pyro-scalor[video]"' in err and err.count("\n") == 1


def test_a_checkpoint_tracks_at_another_capacity_through_the_cli_and_the_api(
    checkpoint, frames, tmp_path
):
    scalor = Scalor.from_checkpoint(checkpoint, device="cpu")
    trained_k = scalor.config.max_objects
    assert trained_k != 64
    # no parameter depends on the capacity
    wide = Scalor(scalor.config.replace(max_objects=64))
    shapes = {k: v.shape for k, v in scalor.nets.state_dict().items()}
    assert shapes == {k: v.shape for k, v in wide.nets.state_dict().items()}
    video = torch.from_numpy(frames).permute(0, 3, 1, 2).float().div(255.0)[None]
    res = scalor.track(video, max_objects=64)
    assert res.presence.shape == (1, video.shape[1], 64) and res.boxes.shape[2] == 64
    assert res.num_dropped.shape == (1, video.shape[1])
    assert scalor.track(video).presence.shape[-1] == trained_k  # the trained K by default
    assert scalor.config.max_objects == trained_k
    gen = scalor.sample_prior(1, 2, max_objects=64, seed=0)
    assert gen.presence.shape == (1, 2, 64)
    gen = scalor.generate(video[:, :2], 1, max_objects=64, seed=0)
    assert gen.presence.shape == (1, 3, 64)
    path = tmp_path / "clip.npy"
    np.save(path, frames)
    assert track(checkpoint, path, tmp_path / "out", "--max-objects", "64") == 0
    rows = load_mot(tmp_path / "out" / "tracks.txt")
    want = mot_rows(res.boxes[0], res.ids[0], res.valid[0], res.presence[0])
    assert len(rows) == len(want)
    np.testing.assert_allclose(rows[:, :6], want[:, :6], atol=0.006)
    with pytest.raises(SystemExit):
        track(checkpoint, path, tmp_path / "bad", "--max-objects", "0")


def test_tracking_options_reach_the_tracker(checkpoint, frames, tmp_path, monkeypatch):
    """``--no-suppression`` and the thresholds set the TrackingConfig that tracking uses."""
    from pyro_scalor.api import TrackingConfig

    seen = []
    original = Scalor.track

    def spy(self, video, **kwargs):
        seen.append(self.tracking)
        return original(self, video, **kwargs)

    monkeypatch.setattr(Scalor, "track", spy)
    path = tmp_path / "clip.npy"
    np.save(path, frames)
    extra = ["--no-suppression", "--track-suppression-threshold", "0.4"]
    assert track(checkpoint, path, tmp_path / "out", *extra) == 0
    assert seen == [TrackingConfig(False, None, 0.4)]
