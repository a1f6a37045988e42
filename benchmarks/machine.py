"""Facts about the machine and code being timed, and the devices to time on."""

from __future__ import annotations

import hashlib
import os
import platform
from pathlib import Path

import pyro
import torch

import pyro_scalor


def resolve_devices(name: str) -> list[torch.device]:
    """'auto' (CPU, plus CUDA when available), 'cpu' or 'cuda[:N]' to a list of devices."""
    if name == "auto":
        return [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but CUDA is not available; use --device cpu")
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"unsupported device {name!r}; use auto, cpu or cuda")
    return [dev]


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.getdevice_name(device)
    return platform.processor() or platform.machine()


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages (other jobs make timings noisy), or None."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def machine_info(devices: list[torch.device]) -> dict:
    """Facts about this machine and software that bear on the timings."""
    return {
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "pyro": pyro.__version__,
        "cuda_available": torch.cuda.is_available(),
        "devices": [{"type": d.type, "name": device_name(d)} for d in devices],
        "load_average_start": load_average(),
        "git": _git_state(),
    }


def _git_state() -> dict:
    """The code being timed: a digest of the package's and the harness's .py files, and the git
    commit and dirty flag of their tree when it is a git checkout (runs with equal digests ran
    the same code)."""
    import subprocess

    package = Path(pyro_scalor.__file__).resolve().parent
    harness = Path(__file__).resolve().parent

    def git(*cmd: str) -> str:
        out = subprocess.run(
            ["git", *cmd], cwd=harness, capture_output=True, text=True, timeout=10, check=True
        )
        return out.stdout.strip()

    digest = hashlib.sha256()
    for folder in (package, harness):
        for path in sorted(folder.rglob("*.py")):
            digest.update(path.read_bytes())
    state: dict = {"package_sha256": digest.hexdigest()[:16]}
    try:
        state.update(commit=git("rev-parse", "HEAD"), dirty=bool(git("status", "--porcelain")))
    except (OSError, subprocess.SubprocessError):
        pass
    return state
