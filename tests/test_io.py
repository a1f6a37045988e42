"""The one JSON writer: plain values, NaN as null, atomic writes."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch

from pyro_scalor.io import plain, save_json


def test_save_json_cleans_numpy_torch_and_nan(tmp_path):
    data = {
        "a": np.float32(0.5),
        "b": np.int64(3),
        "c": np.array([[1, 2], [3, 4]]),
        "d": torch.tensor([1.5, float("nan")]),
        "e": (1, math.inf, {"f": float("nan")}),
        "g": Path("x/y"),
        "h": np.bool_(True),
        "i": torch.tensor(2),
    }
    path = save_json(data, tmp_path / "sub" / "out.json")
    assert path == tmp_path / "sub" / "out.json"
    back = json.loads(path.read_text())
    assert back == {
        "a": 0.5,
        "b": 3,
        "c": [[1, 2], [3, 4]],
        "d": [1.5, None],
        "e": [1, None, {"f": None}],
        "g": "x/y",
        "h": True,
        "i": 2,
    }
    assert list(tmp_path.joinpath("sub").iterdir()) == [path]  # no temporary file left


def test_key_order_and_plain_leaves_plain_values_alone(tmp_path):
    path = save_json({"b": 1, "a": 2}, tmp_path / "o.json", sort_keys=False)
    assert path.read_text().index('"b"') < path.read_text().index('"a"')
    path = save_json({"b": 1, "a": 2}, tmp_path / "s.json")
    assert path.read_text().index('"a"') < path.read_text().index('"b"')
    assert plain({"x": [1, "s", None, 2.5]}) == {"x": [1, "s", None, 2.5]}
    assert isinstance(plain(np.float64(1.0)), float)
