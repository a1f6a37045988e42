"""Disk cache (keys, invalidation, partial entries), the torch Dataset and the seeded loader."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

from pyro_scalor.data import cache as cache_mod
from pyro_scalor.data import generate_sequence, get_preset, load_dataset, make_loader
from pyro_scalor.data.cache import MARKER, cache_path, load_or_generate


def test_cache_is_written_once_then_read(tmp_path, monkeypatch):
    config = get_preset("smoke")
    arrays, path = load_or_generate(config, "val", 3, cache_dir=tmp_path)
    assert (path / MARKER).is_file() and path.is_relative_to(tmp_path)
    assert isinstance(arrays["video"], np.memmap) and not arrays["video"].flags.writeable
    assert arrays["video"].shape == (3, 4, 64, 64, 3) and arrays["video"].dtype == np.uint8
    np.testing.assert_array_equal(arrays["video"][2], generate_sequence(config, "val", 2).video)
    meta = json.loads((path / "meta.json").read_text())
    assert meta["config"] == config.to_dict() and meta["num_sequences"] == 3

    def fail(*args, **kwargs):
        raise AssertionError("a complete cache entry must not be regenerated")

    monkeypatch.setattr(cache_mod, "generate_split", fail)
    again, path2 = load_or_generate(config, "val", 3, cache_dir=tmp_path)
    assert path2 == path
    np.testing.assert_array_equal(again["boxes"], arrays["boxes"])


def test_changed_config_or_version_gets_a_new_entry(tmp_path, monkeypatch):
    config = get_preset("smoke")
    base = cache_path(config, "train", 2, tmp_path)
    assert cache_path(get_preset("smoke", seed=1), "train", 2, tmp_path) != base
    assert cache_path(get_preset("smoke", max_speed=2.5), "train", 2, tmp_path) != base
    assert cache_path(config, "val", 2, tmp_path) != base
    assert cache_path(config, "train", 3, tmp_path) != base
    assert cache_path(get_preset("smoke"), "train", 2, tmp_path) == base
    monkeypatch.setattr(cache_mod, "GENERATOR_VERSION", 10_000)
    assert cache_path(config, "train", 2, tmp_path) != base


def test_changed_config_never_serves_stale_data(tmp_path):
    a = load_dataset("smoke", "train", num_sequences=2, cache_dir=tmp_path)
    b = load_dataset("smoke", "train", num_sequences=2, cache_dir=tmp_path, seed=7)
    assert a.path != b.path
    assert not torch.equal(a[0]["video"], b[0]["video"])
    fresh = generate_sequence(get_preset("smoke", seed=7), "train", 0)
    np.testing.assert_array_equal(b.arrays["video"][0], fresh.video)


def test_partial_entry_is_never_read(tmp_path):
    config = get_preset("smoke")
    path = cache_path(config, "test", 2, tmp_path)
    path.mkdir(parents=True)
    # a crashed writer left arrays of the right shape but garbage, and no completion marker
    for name, (shape, dtype) in cache_mod.split_shapes(config, 2).items():
        np.save(path / f"{name}.npy", np.ones(shape, dtype=dtype))
    (path / "meta.json").write_text(json.dumps({"key": path.name.rsplit("-", 1)[-1]}))
    assert cache_mod.read_entry(path) is None
    arrays, got = load_or_generate(config, "test", 2, cache_dir=tmp_path)
    assert got == path and (path / MARKER).is_file()
    np.testing.assert_array_equal(arrays["video"][1], generate_sequence(config, "test", 1).video)


def test_failed_generation_leaves_no_entry(tmp_path, monkeypatch):
    config = get_preset("smoke")

    def crash(config, split, n, *, out, progress):
        out["video"][0] = 255
        raise RuntimeError("killed mid-way")

    monkeypatch.setattr(cache_mod, "generate_split", crash)
    with pytest.raises(RuntimeError, match="mid-way"):
        load_or_generate(config, "train", 2, cache_dir=tmp_path)
    leftovers = [p for p in tmp_path.rglob("*") if p.is_dir() and "train" in p.name]
    assert leftovers == [], "neither the entry nor its temporary directory may remain"
    monkeypatch.undo()
    arrays, _ = load_or_generate(config, "train", 2, cache_dir=tmp_path)
    np.testing.assert_array_equal(arrays["video"][0], generate_sequence(config, "train", 0).video)


def test_cache_dir_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("PYRO_SCALOR_CACHE", str(tmp_path / "env-cache"))
    assert cache_mod.default_cache_dir() == tmp_path / "env-cache"
    ds = load_dataset("smoke", "val", num_sequences=1)
    assert ds.path.is_relative_to(tmp_path / "env-cache")


def test_dataset_items_and_loader_batches(tmp_path):
    config = get_preset("smoke")
    ds = load_dataset("smoke", "train", num_sequences=6, cache_dir=tmp_path)
    assert len(ds) == 6
    item = ds[4]
    t, o = config.seq_len, config.max_slots
    assert item["video"].shape == (t, 3, 64, 64) and item["video"].dtype == torch.float32
    assert item["boxes"].shape == (t, o, 4) and item["boxes"].dtype == torch.float32
    assert item["ids"].shape == (o,) and item["ids"].dtype == torch.int64
    assert item["visible"].shape == (t, o) and item["visible"].dtype == torch.bool
    assert item["index"] == 4
    assert 0.0 <= item["video"].min() and item["video"].max() <= 1.0
    seq = generate_sequence(config, "train", 4)
    expect = torch.from_numpy(seq.video).permute(0, 3, 1, 2).float() / 255.0
    torch.testing.assert_close(item["video"], expect)
    assert torch.equal(item["visible"], torch.from_numpy(seq.visible))
    assert ds.videos([0, 4]).shape == (2, t, 3, 64, 64)
    with pytest.raises(IndexError):
        ds[6]

    loader = make_loader(ds, batch_size=4, shuffle=True, seed=3, drop_last=True)
    batches = list(loader)
    assert len(batches) == 1
    batch = batches[0]
    assert batch["video"].shape == (4, t, 3, 64, 64) and batch["index"].shape == (4,)
    assert batch["boxes"].shape == (4, t, o, 4) and batch["visible"].shape == (4, t, o)

    def order(seed):
        return [b["index"].tolist() for b in make_loader(ds, 2, shuffle=True, seed=seed)]

    assert order(3) == order(3)
    assert any(order(s) != order(3) for s in range(4, 10))
    assert sorted(sum(order(3), [])) == list(range(6))
    unshuffled = [b["index"].tolist() for b in make_loader(ds, 2, shuffle=False)]
    assert sum(unshuffled, []) == list(range(6))


def test_dataset_pickles_as_its_cache_path(tmp_path):
    import pickle

    ds = load_dataset("smoke", "train", num_sequences=3, cache_dir=tmp_path)
    blob = pickle.dumps(ds)
    assert len(blob) < 10_000, "the video arrays must not travel with the pickle"
    again = pickle.loads(blob)
    assert len(again) == 3 and torch.equal(again[2]["video"], ds[2]["video"])


def test_entries_record_sizes_and_checksums_and_hash_once_per_file_version(tmp_path, monkeypatch):
    import hashlib

    config = get_preset("smoke")
    _, path = load_or_generate(config, "val", 2, cache_dir=tmp_path)
    files = json.loads((path / "meta.json").read_text())["files"]
    assert set(files) == {f"{n}.npy" for n in cache_mod.ARRAYS}
    for name, rec in files.items():
        data = (path / name).read_bytes()
        assert rec == {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    hashed = []
    real = cache_mod.file_sha256
    monkeypatch.setattr(cache_mod, "file_sha256", lambda p: hashed.append(p.name) or real(p))
    load_or_generate(config, "val", 2, cache_dir=tmp_path)
    assert hashed == [], "a file verified at its current size and mtime is not hashed again"
    stat = (path / "ids.npy").stat()
    os.utime(path / "ids.npy", ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    load_or_generate(config, "val", 2, cache_dir=tmp_path)
    assert hashed == ["ids.npy"], "a touched file is hashed again (and still matches)"
    hashed.clear()
    load_or_generate(config, "val", 2, cache_dir=tmp_path)
    assert hashed == []


def test_an_entry_without_checksums_is_rebuilt(tmp_path, caplog):
    config = get_preset("smoke")
    _, path = load_or_generate(config, "val", 2, cache_dir=tmp_path)
    meta = json.loads((path / "meta.json").read_text())
    del meta["files"]  # as entries of earlier versions were written
    (path / "meta.json").write_text(json.dumps(meta))
    with caplog.at_level("WARNING"):
        arrays, _ = load_or_generate(config, "val", 2, cache_dir=tmp_path)
    assert "(meta.json records no checksums); rebuilding it" in caplog.text
    assert "files" in json.loads((path / "meta.json").read_text())
    np.testing.assert_array_equal(arrays["video"][1], generate_sequence(config, "val", 1).video)
