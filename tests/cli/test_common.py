"""Shared command-line helpers: number types, devices, and the sub-command wiring."""

from __future__ import annotations

import argparse

import pytest
import torch

from pyro_scalor.api import TrackingConfig
from pyro_scalor.cli import COMMAND_MODULES, CliError, build_parser
from pyro_scalor.cli.common import (
    add_tracking_arguments,
    apply_tracking_arguments,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
    probability,
    resolve_device,
)


@pytest.mark.parametrize(
    ("parse", "good", "bad"),
    [
        (positive_int, {"1": 1, "12": 12}, ["0", "-3", "1.5", "x"]),
        (non_negative_int, {"0": 0, "7": 7}, ["-1", "x"]),
        (positive_float, {"0.5": 0.5, "3": 3.0}, ["0", "-1", "nan", "x"]),
        (non_negative_float, {"0": 0.0, "2.5": 2.5}, ["-0.1", "nan", "x"]),
        (probability, {"0": 0.0, "1": 1.0, "0.1": 0.1}, ["2", "-0.5", "nan", "x"]),
    ],
)
def test_number_types(parse, good, bad):
    for text, value in good.items():
        assert parse(text) == value
    for text in bad:
        with pytest.raises(argparse.ArgumentTypeError, match="expected"):
            parse(text)


def test_resolve_device(monkeypatch):
    assert resolve_device("cpu") == torch.device("cpu")
    for bad in ("banana", "gpu0", "meta"):
        with pytest.raises(CliError, match=r"device 'banana'|device 'gpu0'|device 'meta'"):
            resolve_device(bad)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(CliError, match="CUDA is not available"):
        resolve_device("cuda:0")


def test_every_command_module_registers_its_command():
    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    assert list(commands) == [
        "data",
        "train",
        "evaluate",
        "main",
        "bench",
        "generate",
        "track",
        "convert-checkpoint",
    ]
    assert len(COMMAND_MODULES) == len(commands)


def test_main_stays_the_entry_function_after_the_commands_are_imported():
    import pyro_scalor.cli as cli

    build_parser()
    assert callable(cli.main) and cli.main.__module__ == "pyro_scalor.cli"


class _Holder:
    tracking = TrackingConfig(suppression_threshold=0.5, track_suppression_threshold=0.5)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], TrackingConfig(suppression_threshold=0.5, track_suppression_threshold=0.5)),
        (["--no-suppression"], TrackingConfig(False, 0.5, 0.5)),
        (["--suppression-threshold", "0.3"], TrackingConfig(True, 0.3, 0.5)),
        (["--track-suppression-threshold", "0"], TrackingConfig(True, 0.5, 0.0)),
        (["--discovery-threshold", "0.7"], TrackingConfig(True, 0.5, 0.5, 0.7)),
    ],
)
def test_tracking_options_change_only_what_is_given(argv, expected):
    parser = argparse.ArgumentParser()
    add_tracking_arguments(parser)
    holder = _Holder()
    apply_tracking_arguments(parser.parse_args(argv), holder)
    assert holder.tracking == expected


def test_a_zero_suppression_threshold_is_a_one_line_cli_error():
    parser = argparse.ArgumentParser()
    add_tracking_arguments(parser)
    with pytest.raises(CliError, match="suppression_threshold must be in"):
        apply_tracking_arguments(parser.parse_args(["--suppression-threshold", "0"]), _Holder())
