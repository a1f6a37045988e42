"""``pyro-scalor track``: track the objects of your own video with a trained checkpoint.

The video (an mp4 or any file PyAV decodes, a folder of PNG frames, or a ``.npy`` array) is
cropped and resized to the model's square frames, tracked, and written as ``tracks.txt`` in the
MOTChallenge format (see :mod:`pyro_scalor.metrics.mot`) plus the tracking pictures that
``evaluate`` draws.

Example::

    pyro-scalor track runs/cpu-default street.mp4 --out outputs/street --max-frames 100
"""

from __future__ import annotations

from pathlib import Path

from pyro_scalor.cli.common import (
    CliError,
    add_command,
    add_device_argument,
    add_max_objects_argument,
    add_tracking_arguments,
    apply_tracking_arguments,
    load_scalor,
    positive_int,
)
from pyro_scalor.data.video_files import CROPS

#: Frames shown in the tracking grid PNG (the GIF shows every frame).
GRID_FRAMES = 8


def register(sub) -> None:
    """Add the ``track`` sub-command."""
    p = add_command(
        sub,
        "track",
        help="track the objects of your own video (mp4, PNG folder or .npy)",
        description="Track the objects of a video with a trained checkpoint; write the tracks "
        "in the MOTChallenge format (DIR/tracks.txt: frame,id,x,y,w,h,conf,-1,-1,-1 with frames "
        "from 1, boxes in pixels of the fitted frames, conf = presence) and pictures.",
    )
    p.add_argument("checkpoint", type=Path, help="checkpoint file or run directory")
    p.add_argument(
        "video",
        type=Path,
        help="an mp4 (PyAV), a folder of PNG frames, or a .npy array (T, H, W, C) or "
        "(T, C, H, W), uint8 or floats in [0, 1]",
    )
    p.add_argument("--out", type=Path, required=True, help="directory for tracks and pictures")
    p.add_argument(
        "--size",
        type=positive_int,
        default=None,
        help="side of the square frames the video is fitted to; must be the model's "
        "(default: the model's, 64 for every shipped preset)",
    )
    p.add_argument(
        "--crop",
        choices=CROPS,
        default="center",
        help="center: keep the central square of each frame; none: squeeze the whole frame",
    )
    p.add_argument("--max-frames", type=positive_int, help="track only the first N frames")
    add_max_objects_argument(p)
    add_tracking_arguments(p)
    add_device_argument(p)
    p.set_defaults(func=run_track)


def run_track(args) -> int:
    """Track ``args.video`` with ``args.checkpoint``; writes tracks.txt and pictures."""
    from pyro_scalor.data.video_files import fit_frames, read_video
    from pyro_scalor.metrics.mot import mot_rows, save_mot
    from pyro_scalor.viz.tracking import write_tracking_pictures

    try:
        frames = read_video(args.video, args.max_frames)
    except ImportError as err:
        raise CliError(str(err)) from None
    scalor = load_scalor(args.checkpoint, args.device)
    apply_tracking_arguments(args, scalor)
    cfg = scalor.config
    size = args.size or cfg.image_size
    if size != cfg.image_size:
        raise CliError(
            f"the model takes {cfg.image_size}x{cfg.image_size} frames; use --size "
            f"{cfg.image_size} (or leave it out)"
        )
    video = fit_frames(frames, size, args.crop)  # (T, 3, S, S)
    if cfg.channels == 1:
        video = video.mean(1, keepdim=True)
    video = video[None]  # one sequence: (1, T, C, S, S)
    result = scalor.track(video, max_objects=args.max_objects).to("cpu")
    rows = mot_rows(result.boxes[0], result.ids[0], result.valid[0], result.presence[0])
    tracks = save_mot(rows, args.out / "tracks.txt")
    pictures = write_tracking_pictures(
        video, result, args.out, max_sequences=1, grid_frames=GRID_FRAMES
    )
    n_frames, height, width = frames.shape[:3]
    ids = sorted({int(i) for i in rows[:, 1]})
    print(
        f"tracked {n_frames} frames ({width}x{height} -> {size}x{size}, crop {args.crop}): "
        f"{len(ids)} tracks, {len(rows) / n_frames:.1f} objects per frame"
    )
    for path in (tracks, *pictures):
        print(f"wrote {path}")
    return 0
