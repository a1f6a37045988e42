"""The merges of propagated and discovered slots: by track (the default) and top-K."""

from __future__ import annotations

from dataclasses import fields

import torch

from pyro_scalor.model.slots import Slots, merge, merge_topk, merge_tracks

WHAT, HID = 3, 2


def make_slots(pres, first_id: int, discovered: bool) -> Slots:
    """Slots with presences ``pres`` (..., N) and every other field tagged by its candidate."""
    pres = torch.as_tensor(pres, dtype=torch.float32)
    n = pres.shape[-1]
    ids = (torch.arange(n) + first_id).expand(pres.shape)
    tag = ids.float()[..., None]  # each float field carries the candidate's id
    return Slots(
        pres=pres,
        box=tag.expand(pres.shape + (4,)) / 100,
        logit=tag.expand(pres.shape + (2,)) * 2,
        motion=tag.expand(pres.shape + (4,)) * 6,
        history=tag[..., None].expand(pres.shape + (2, 4)) * 7,
        moves=ids.float() * 8,
        drawn=tag.expand(pres.shape + (8,)) * 9,
        what=tag.expand(pres.shape + (WHAT,)) * 3,
        depth=tag * 4,
        h=tag.expand(pres.shape + (HID,)) * 5,
        ids=ids.clone(),
        discovered=torch.full(pres.shape, discovered),
    )


def check_consistent(s: Slots) -> None:
    """Every field of a merged slot comes from the candidate with that slot's id."""
    tag = s.ids.float()[..., None]
    torch.testing.assert_close(s.box, tag.expand(s.box.shape) / 100)
    torch.testing.assert_close(s.logit, tag.expand(s.logit.shape) * 2)
    torch.testing.assert_close(s.motion, tag.expand(s.motion.shape) * 6)
    torch.testing.assert_close(s.history, tag[..., None].expand(s.history.shape) * 7)
    torch.testing.assert_close(s.moves, s.ids.float() * 8)
    torch.testing.assert_close(s.drawn, tag.expand(s.drawn.shape) * 9)
    torch.testing.assert_close(s.what, tag.expand(s.what.shape) * 3)
    torch.testing.assert_close(s.depth, tag * 4)
    torch.testing.assert_close(s.h, tag.expand(s.h.shape) * 5)


def test_merge_keeps_the_most_present_candidates_sorted():
    prop = make_slots([[0.9, 0.1, 0.5], [0.0, 0.3, 0.2]], first_id=1, discovered=False)
    disc = make_slots([[0.2, 0.95, 0.0, 0.6], [0.8, 0.1, 0.7, 0.05]], first_id=101, discovered=True)
    out, dropped = merge(prop, disc, 3, "topk")
    torch.testing.assert_close(out.pres, torch.tensor([[0.95, 0.9, 0.6], [0.8, 0.7, 0.3]]))
    assert dropped.tolist() == [0.0, 0.0]
    assert out.ids.tolist() == [[102, 1, 104], [101, 103, 2]]
    assert out.discovered.tolist() == [[True, False, True], [True, True, False]]
    check_consistent(out)
    for f in fields(Slots):
        assert getattr(out, f.name).shape[:2] == (2, 3), f.name
    assert out.ids.dtype == torch.long and out.discovered.dtype == torch.bool


def test_merge_broadcasts_a_particle_dim_and_is_differentiable():
    prop = make_slots([[0.9, 0.1]], first_id=1, discovered=False)  # (B=1, K=2)
    disc_pres = torch.tensor([[[0.5, 0.95, 0.0]], [[0.05, 0.0, 0.2]]], requires_grad=True)
    disc = make_slots(disc_pres.detach(), first_id=11, discovered=True)  # (P=2, B=1, N=3)
    disc.pres = disc_pres
    out, _ = merge_topk(prop, disc, 2)
    assert out.pres.shape == (2, 1, 2) and out.box.shape == (2, 1, 2, 4)
    assert out.ids.tolist() == [[[12, 1]], [[1, 13]]]
    check_consistent(out)
    out.pres.sum().backward()
    # gradient reaches exactly the kept discovered candidates
    torch.testing.assert_close(disc_pres.grad, torch.tensor([[[0.0, 1.0, 0.0]], [[0.0, 0.0, 1.0]]]))


def test_empty_slots_lose_to_any_present_discovery():
    empty = Slots.empty((2,), 3, WHAT, HID, window=2)
    assert empty.pres.shape == (2, 3) and (empty.ids == 0).all() and not empty.discovered.any()
    disc = make_slots(torch.tensor([[0.3, 0.6, 0.1, 0.2]]).expand(2, 4), 1, discovered=True)
    out, _ = merge(empty, disc, 3, "topk")
    assert out.ids.tolist() == [[2, 1, 4], [2, 1, 4]]
    assert out.discovered.all()
    tracks, dropped = merge(empty, disc, 3)  # fills the free slots, most present first
    assert tracks.ids.tolist() == [[2, 1, 4], [2, 1, 4]] and tracks.discovered.all()
    assert dropped.tolist() == [0.0, 0.0]


def test_topk_merge_lets_a_discovery_evict_a_present_track_and_counts_it():
    prop = make_slots([[0.9, 0.8]], first_id=1, discovered=False)
    disc = make_slots([[0.95, 0.7, 0.1]], first_id=11, discovered=True)
    out, dropped = merge_topk(prop, disc, 2)
    assert out.ids.tolist() == [[11, 1]]  # track 2 (presence 0.8) was evicted
    assert dropped.tolist() == [1.0]  # proposal 12 (0.7) found no room


def test_a_present_track_is_never_evicted_by_a_discovery():
    # slot 0 present, slot 1 weakly present (free), slot 2 absent (free)
    prop = make_slots([[0.9, 0.3, 0.0], [0.6, 0.7, 0.51]], first_id=1, discovered=False)
    disc = make_slots([[0.99, 0.98, 0.2, 0.1], [1.0, 1.0, 1.0, 1.0]], 11, discovered=True)
    out, dropped = merge_tracks(prop, disc)
    # the two most present proposals fill the free slots, emptiest first; the track stays put
    assert out.ids.tolist() == [[1, 12, 11], [1, 2, 3]]
    assert out.discovered.tolist() == [[False, True, True], [False, False, False]]
    torch.testing.assert_close(out.pres, torch.tensor([[0.9, 0.98, 0.99], [0.6, 0.7, 0.51]]))
    # capacity full in sequence 1: its four present proposals are dropped and counted
    assert dropped.tolist() == [0.0, 4.0]
    check_consistent(out)


def test_full_capacity_drops_and_counts_the_extra_discoveries():
    prop = make_slots([[1.0, 0.0, 1.0, 0.0]], first_id=1, discovered=False)
    disc = make_slots([[0.2, 0.9, 0.7, 0.8, 0.6, 0.4]], 11, discovered=True)
    out, dropped = merge_tracks(prop, disc)
    assert out.ids.tolist() == [[1, 12, 3, 14]]  # the two most present proposals, in order
    assert dropped.tolist() == [2.0]  # proposals 13 (0.7) and 15 (0.6) found no free slot
    check_consistent(out)


def test_track_merge_broadcasts_a_particle_dim_and_is_differentiable():
    prop_pres = torch.tensor([[0.9, 0.1]], requires_grad=True)  # (B=1, K=2)
    prop = make_slots(prop_pres.detach(), first_id=1, discovered=False)
    prop.pres = prop_pres
    disc_pres = torch.tensor([[[0.5, 0.95, 0.0]], [[0.05, 0.0, 0.02]]], requires_grad=True)
    disc = make_slots(disc_pres.detach(), first_id=11, discovered=True)  # (P=2, B=1, N=3)
    disc.pres = disc_pres
    out, dropped = merge_tracks(prop, disc)
    assert out.pres.shape == (2, 1, 2) and out.box.shape == (2, 1, 2, 4)
    assert out.ids.tolist() == [[[1, 12]], [[1, 2]]]
    assert dropped.tolist() == [[0.0], [0.0]]
    check_consistent(out)
    out.pres.sum().backward()
    torch.testing.assert_close(disc_pres.grad, torch.tensor([[[0.0, 1.0, 0.0]], [[0.0, 0.0, 0.0]]]))
    torch.testing.assert_close(prop_pres.grad, torch.tensor([[2.0, 1.0]]))
