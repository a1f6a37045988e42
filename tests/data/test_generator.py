"""Procedural moving-object data: counts, motion, viewport, determinism, ground-truth boxes."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from pyro_scalor.data import PAPER_VISIBLE_AVERAGE, generate_sequence, generate_split, get_preset
from pyro_scalor.data.config import MAX_BOX_SIDE, MIN_BOX_SIDE
from pyro_scalor.data.generator import bounce, build_bank
from pyro_scalor.data.presets import PRESETS


def _sequences(name: str, n: int, split: str = "test", **overrides):
    config = get_preset(name, **overrides)
    bank = build_bank(config, split)
    return config, bank, [generate_sequence(config, split, i, bank) for i in range(n)]


@pytest.mark.parametrize("name", ["dsprites-ld", "dsprites-md", "dsprites-vhd", "mnist-ld"])
def test_object_counts_in_range(name):
    config, _, seqs = _sequences(name, 30)
    counts = [s.scene.num_objects for s in seqs]
    assert min(counts) >= config.min_objects and max(counts) <= config.max_objects
    assert len(set(counts)) > 1, "the count should vary between sequences"
    for s in seqs:
        n = s.scene.num_objects
        assert s.ids[:n].tolist() == list(range(1, n + 1))
        assert (s.ids[n:] == 0).all() and not s.visible[:, n:].any()
        assert s.boxes.shape == (config.seq_len, config.max_slots, 4)


def test_dense_discovery_adds_new_objects_at_the_steps():
    config, _, seqs = _sequences("dsprites-dense", 10)
    steps = config.discovery_steps
    assert steps == (0, 6, 13, 20) and config.seq_len == 24
    for s in seqs:
        born = s.scene.birth
        per_step = [int((born == k).sum()) for k in steps]
        assert all(config.min_objects <= c <= config.max_objects for c in per_step)
        for k in steps:
            new = born == k
            assert not s.visible[:k, : s.scene.num_objects][:, new].any(), "seen before birth"
            # born entirely inside the view, so visible at its birth frame
            assert s.visible[k, : s.scene.num_objects][new].all()
        counts = s.visible.sum(axis=1)
        for k in steps[1:]:
            assert counts[k] > counts[k - 1]
    leaving = sum(int((s.visible[:-1] & ~s.visible[1:]).sum()) for s in seqs)
    assert leaving > 0, "objects should also leave the view"


def test_bounce_closed_form_matches_known_path():
    start = np.array([[1.0, 5.0]])
    velocity = np.array([[-3.0, 0.5]])
    steps = np.arange(5)[:, None]
    pos, vel = bounce(start, velocity, steps, np.array([10.0]))
    np.testing.assert_allclose(pos[:, 0, 0], [1.0, 2.0, 5.0, 8.0, 9.0])
    np.testing.assert_allclose(vel[:, 0, 0], [-3.0, 3.0, 3.0, 3.0, -3.0])
    np.testing.assert_allclose(pos[:, 0, 1], 5.0 + 0.5 * np.arange(5))
    np.testing.assert_allclose(vel[:, 0, 1], 0.5)


@pytest.mark.parametrize("name", ["dsprites-ld", "dsprites-hd", "mnist-md"])
def test_motion_stays_in_environment_and_reflects_off_walls(name):
    config, _, seqs = _sequences(name, 20, seq_len=16)
    flips = 0
    for s in seqs:
        sc = s.scene
        limit = (config.env_size - sc.patch_side)[None, :, None].astype(float)
        assert (sc.positions >= 0).all() and (sc.positions <= limit).all()
        speed = np.linalg.norm(sc.velocities, axis=-1)
        assert (speed >= config.min_speed - 1e-9).all()
        assert (speed <= config.max_speed + 1e-9).all()
        # step by step: move, then reflect off whichever wall was crossed
        moved = sc.positions[:-1] + sc.velocities[:-1]
        below, above = moved < 0, moved > limit
        expect = np.where(below, -moved, np.where(above, 2 * limit - moved, moved))
        np.testing.assert_allclose(sc.positions[1:], expect, atol=1e-9)
        flipped = np.sign(sc.velocities[1:]) != np.sign(sc.velocities[:-1])
        np.testing.assert_array_equal(flipped, below | above)
        flips += int(flipped.sum())
    assert flips > 0, "some objects should hit a wall in 20 x 16 frames"


def test_objects_enter_and_leave_the_view():
    _, _, seqs = _sequences("dsprites-ld", 20)
    enter = sum(int((~s.visible[:-1] & s.visible[1:]).sum()) for s in seqs)
    leave = sum(int((s.visible[:-1] & ~s.visible[1:]).sum()) for s in seqs)
    hidden = sum(int((~s.visible[:, : s.scene.num_objects]).sum()) for s in seqs)
    assert enter > 0 and leave > 0 and hidden > 0


def _drawn_in_view(config, bank, scene, t, o):
    """Alpha (H, W) of object o alone at frame t, cut out of the whole environment."""
    env = np.zeros((config.env_size, config.env_size), dtype=np.float32)
    patch = bank.alpha[int(scene.size[o])][int(scene.sprite[o])]
    x, y = np.rint(scene.positions[t, o]).astype(int)
    env[y : y + patch.shape[0], x : x + patch.shape[1]] = patch
    off, size = config.view_offset, config.image_size
    return env[off : off + size, off : off + size]


@pytest.mark.parametrize("name", ["dsprites-ld", "mnist-ld", "dsprites-dense", "dsprites-movingbg"])
def test_boxes_are_tight_around_drawn_pixels_in_view(name):
    config, bank, seqs = _sequences(name, 4)
    checked_partial = 0
    for s in seqs:
        sc = s.scene
        for t in range(config.seq_len):
            for o in range(sc.num_objects):
                alpha = _drawn_in_view(config, bank, sc, t, o) if sc.alive[t, o] else None
                if alpha is None or not (alpha > 0).any():
                    assert not s.visible[t, o]
                    np.testing.assert_array_equal(s.boxes[t, o], 0)
                    continue
                rows, cols = np.nonzero(alpha > 0)
                box = [cols.min(), rows.min(), cols.max() + 1, rows.max() + 1]
                assert s.visible[t, o]
                np.testing.assert_array_equal(s.boxes[t, o], box)
                whole = bank.boxes[int(sc.size[o])][int(sc.sprite[o])]
                if (box[2] - box[0], box[3] - box[1]) != (whole[2] - whole[0], whole[3] - whole[1]):
                    checked_partial += 1
    assert checked_partial > 0, "no object was cut by the view edge"


@pytest.mark.parametrize("name", ["dsprites-ld", "mnist-md", "dsprites-vhd"])
def test_every_drawn_pixel_lies_in_a_visible_box(name):
    config, _, seqs = _sequences(name, 3)
    size = config.image_size
    for s in seqs:
        for t in range(config.seq_len):
            covered = np.zeros((size, size), dtype=bool)
            for x0, y0, x1, y1 in s.boxes[t][s.visible[t]].astype(int):
                covered[y0:y1, x0:x1] = True
            lit = s.video[t].max(axis=-1) > 0
            assert lit.any() and not (lit & ~covered).any()


def test_later_objects_in_depth_order_are_drawn_on_top():
    config, bank, seqs = _sequences("dsprites-md", 5)
    checked = 0
    for s in seqs:
        sc = s.scene
        top = np.argsort(sc.depth)[::-1]  # front to back
        for t in range(config.seq_len):
            for o in top:
                alpha = _drawn_in_view(config, bank, sc, t, o)
                if (alpha > 0).any():
                    # the front-most object's pixels show exactly its colour
                    colour = np.round(sc.colour[o] * 255).astype(np.uint8)
                    assert (s.video[t][alpha > 0] == colour).all()
                    checked += 1
                    break
    assert checked == 5 * config.seq_len


def test_overlaps_happen():
    from pyro_scalor.data.stats import overlapping

    _, _, seqs = _sequences("dsprites-ld", 20)
    assert sum(int(overlapping(s.boxes, s.visible).sum()) for s in seqs) > 0


def test_same_seed_same_data_and_splits_differ():
    config = get_preset("smoke")
    a = generate_sequence(config, "train", 3)
    b = generate_sequence(config, "train", 3)
    np.testing.assert_array_equal(a.video, b.video)
    np.testing.assert_array_equal(a.boxes, b.boxes)
    # any sequence regenerates alone, identical to its place in the split
    split = generate_split(config, "train", 5)
    np.testing.assert_array_equal(split["video"][3], a.video)
    np.testing.assert_array_equal(split["visible"][3], a.visible)
    videos = [generate_sequence(config, s, 0).video for s in ("train", "val", "test")]
    videos.append(generate_sequence(dataclasses.replace(config, seed=1), "train", 0).video)
    videos.append(generate_sequence(config, "train", 1).video)
    for i in range(len(videos)):
        for j in range(i + 1, len(videos)):
            assert not np.array_equal(videos[i], videos[j])


def test_mnist_digit_sets_and_splits_are_disjoint():
    from pyro_scalor.data.sprites import load_mnist, mnist_pool

    _, labels = load_mnist()
    train = mnist_pool(get_preset("mnist-0-5").digits, "train")
    test = mnist_pool(get_preset("mnist-6-9").digits, "test")
    assert set(labels[train]) == set(range(6)) and set(labels[test]) == {6, 7, 8, 9}
    pools = [set(mnist_pool(tuple(range(10)), s)) for s in ("train", "val", "test")]
    assert not (pools[0] & pools[1] or pools[0] & pools[2] or pools[1] & pools[2])


@pytest.mark.parametrize("name", list(PRESETS))
def test_object_box_sides_within_limits(name):
    config = get_preset(name)
    bank = build_bank(config, "train")
    for size in bank.sizes:
        boxes = bank.boxes[size]
        sides = np.concatenate([boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]])
        assert len(boxes) > 0
        assert sides.min() >= MIN_BOX_SIDE and sides.max() <= MAX_BOX_SIDE


def test_moving_background_translates():
    from pyro_scalor.data.background import moving_background

    frames, velocity = moving_background(np.random.default_rng(0), 64, 8, 0.5, 1.5)
    assert frames.min() > 0.0 and frames.max() <= 1.0 and frames.std() > 0.05
    assert 0.5 <= np.linalg.norm(velocity) <= 1.5
    for t in range(1, 8):
        dx, dy = np.rint(velocity * t).astype(int)
        np.testing.assert_array_equal(frames[t], np.roll(frames[0], (dy, dx), axis=(0, 1)))
    assert np.abs(frames[-1] - frames[0]).mean() > 0.01, "the background should move"
    # in the dataset, the background shows (non-black) wherever no object box is
    config, _, seqs = _sequences("dsprites-movingbg", 2)
    for s in seqs:
        covered = np.zeros((config.seq_len, 64, 64), dtype=bool)
        for t, o in zip(*np.nonzero(s.visible)):
            x0, y0, x1, y1 = s.boxes[t, o].astype(int)
            covered[t, y0:y1, x0:x1] = True
        assert (s.video.max(axis=-1)[~covered] > 0).all()


@pytest.mark.parametrize("name", sorted(PAPER_VISIBLE_AVERAGE))
def test_visible_objects_match_paper_average(name):
    _, _, seqs = _sequences(name, 40)
    mean = np.mean([s.visible.sum(axis=1).mean() for s in seqs])
    paper = PAPER_VISIBLE_AVERAGE[name]
    assert abs(mean - paper) <= 0.1 * paper, f"{name}: {mean:.2f} visible vs paper {paper}"
