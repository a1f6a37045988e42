"""Peak memory of a stretch of code: resident set size on CPU, allocator peaks on CUDA."""

from __future__ import annotations

import ctypes
import gc
import resource
import sys

import torch


def _proc_status_mb(field: str) -> float | None:
    """``field`` (e.g. 'VmRSS', 'VmHWM') of /proc/self/status in MiB, or None if unreadable."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def _ru_maxrss_mb() -> float:
    """Lifetime peak RSS of this process in MiB (``ru_maxrss``: KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024.0


def _release_memory() -> None:
    """Collect garbage and return freed heap memory to the OS (glibc ``malloc_trim``)."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


class PeakMemory:
    """Peak memory of the code run between :meth:`start` and :meth:`stop` on ``device``.

    :meth:`stop` returns ``(delta_mb, peak_mb, method)``: the growth over the memory in use at
    :meth:`start`, the absolute peak, and how it was measured.
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.base = 0.0
        self.method = ""

    def start(self) -> None:
        """Reset the peak counter and record the baseline."""
        _release_memory()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.base = torch.cuda.memory_allocated(self.device) / 2**20
            self.method = "torch.cuda.max_memory_allocated"
            return
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # reset VmHWM (the peak RSS) to the current RSS
            self.base = _proc_status_mb("VmRSS") or 0.0
            self.method = "VmHWM after /proc/self/clear_refs reset"
        except OSError:
            self.base = _proc_status_mb("VmRSS") or _ru_maxrss_mb()
            self.method = "ru_maxrss (lifetime peak)"

    def stop(self) -> tuple[float, float, str]:
        """Return ``(delta_mb, peak_mb, method)`` since :meth:`start`."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            peak = torch.cuda.max_memory_allocated(self.device) / 2**20
        elif self.method.startswith("VmHWM"):
            peak = _proc_status_mb("VmHWM") or _ru_maxrss_mb()
        else:
            peak = _ru_maxrss_mb()
        return max(peak - self.base, 0.0), peak, self.method
