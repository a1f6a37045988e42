"""Argument helpers shared by the sub-commands: number types, devices, common options.

Every sub-command parser is made by :func:`add_command`, whose help formatter shows each
option's default after its help text (options without a meaningful default show none).
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable
from pathlib import Path

__all__ = [
    "CliError",
    "DefaultsFormatter",
    "add_cache_dir_argument",
    "add_command",
    "add_device_argument",
    "add_max_objects_argument",
    "add_progress_argument",
    "add_tracking_arguments",
    "apply_tracking_arguments",
    "load_scalor",
    "non_negative_float",
    "non_negative_int",
    "positive_float",
    "positive_int",
    "probability",
    "resolve_device",
]


class CliError(Exception):
    """A user error on the command line: printed as one line without a traceback, exit code 2."""


class DefaultsFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows ``(default: X)`` after an option's help, except where X is None or False."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        hidden = action.default is None or action.default is False
        if hidden or action.default == argparse.SUPPRESS or "(default" in text:
            return text
        return super()._get_help_string(action)


def add_command(sub, name: str, **kwargs) -> argparse.ArgumentParser:
    """Add sub-command ``name`` to the sub-parsers ``sub`` with :class:`DefaultsFormatter`."""
    if "help" in kwargs and "description" not in kwargs:
        kwargs["description"] = kwargs["help"][:1].upper() + kwargs["help"][1:] + "."
    return sub.add_parser(name, formatter_class=DefaultsFormatter, **kwargs)


def _number(cast: type, accept: Callable[[float], bool], what: str):
    """An argparse ``type``: parse with ``cast``, require ``accept(value)``, else say ``what``."""

    def parse(text: str):
        try:
            value = cast(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not accept(value):
            raise argparse.ArgumentTypeError(f"expected {what}, got {value}")
        return value

    parse.__name__ = what  # argparse names the type in its messages
    return parse


positive_int = _number(int, lambda v: v >= 1, "a positive integer")
non_negative_int = _number(int, lambda v: v >= 0, "a non-negative integer")
positive_float = _number(float, lambda v: v > 0, "a positive number")
non_negative_float = _number(float, lambda v: v >= 0, "a number >= 0")
probability = _number(float, lambda v: 0.0 <= v <= 1.0, "a probability in [0, 1]")


def resolve_device(name: str):
    """'auto' (CUDA if available, else CPU), 'cpu', 'cuda' or 'cuda:N' to a ``torch.device``.

    Raises :class:`CliError` for an unknown name or a CUDA device this machine does not have.
    """
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except (RuntimeError, ValueError):
        raise CliError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise CliError(f"device {name!r} requested but CUDA is not available; use --device cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise CliError(f"device {name!r}: this machine has {torch.cuda.device_count()} GPUs")
    elif dev.type != "cpu":
        raise CliError(f"unsupported device {name!r}; use auto, cpu, cuda or cuda:N")
    return dev


def add_device_argument(p: argparse.ArgumentParser) -> None:
    """``--device`` (resolved later with :func:`resolve_device`)."""
    p.add_argument(
        "--device", default="auto", help="auto (CUDA if available, else CPU), cpu, cuda or cuda:N"
    )


def add_max_objects_argument(p: argparse.ArgumentParser) -> None:
    """``--max-objects``: the slot capacity K to track with (no parameter depends on it)."""
    p.add_argument(
        "--max-objects",
        type=positive_int,
        default=None,
        help="object slots K to track with (default: the checkpoint's; a model trained at one "
        "K tracks at another)",
    )


def add_tracking_arguments(p: argparse.ArgumentParser) -> None:
    """Tracking-time duplicate rules (a :class:`~pyro_scalor.api.TrackingConfig`); each
    default is the checkpoint's own setting."""
    p.add_argument(
        "--no-suppression",
        action="store_true",
        help="track without the tracking-time duplicate rules (default: the checkpoint's); a "
        "model trained with the rules keeps them: --suppression-threshold 1 "
        "--track-suppression-threshold 0 switches those off",
    )
    p.add_argument(
        "--suppression-threshold",
        type=probability,
        default=None,
        help="box overlap above which a less present proposal is suppressed "
        "(default: the checkpoint's)",
    )
    p.add_argument(
        "--track-suppression-threshold",
        type=probability,
        default=None,
        help="box IoU above which the younger of two trackers is ended, 0 never "
        "(default: the checkpoint's)",
    )
    p.add_argument(
        "--discovery-threshold",
        type=probability,
        default=None,
        help="presence a discovery needs to count as an object, 0.5 the mode "
        "(default: the checkpoint's)",
    )


def apply_tracking_arguments(args, scalor) -> None:
    """Set ``scalor.tracking`` from :func:`add_tracking_arguments`' options (unchanged when
    none is given)."""
    changes = {
        k: v
        for k, v in (
            ("suppression_threshold", args.suppression_threshold),
            ("track_suppression_threshold", args.track_suppression_threshold),
            ("discovery_threshold", args.discovery_threshold),
        )
        if v is not None
    }
    if args.no_suppression:
        changes["suppression"] = False
    if changes:
        try:
            scalor.tracking = dataclasses.replace(scalor.tracking, **changes)
        except ValueError as err:
            raise CliError(str(err)) from None


def add_cache_dir_argument(p: argparse.ArgumentParser) -> None:
    """``--cache-dir``: where generated datasets are cached."""
    p.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="dataset cache directory (default: $PYRO_SCALOR_CACHE or ~/.cache/pyro-scalor)",
    )


def add_progress_argument(p: argparse.ArgumentParser) -> None:
    """``--no-progress``: no progress bars."""
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def load_scalor(checkpoint: Path, device: str):
    """The :class:`pyro_scalor.api.Scalor` of a checkpoint file or run directory on ``device``."""
    from pyro_scalor.api import Scalor

    return Scalor.from_checkpoint(checkpoint, device=resolve_device(device))
