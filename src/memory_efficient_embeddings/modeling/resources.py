"""Wall-time and peak-memory measurement for a block of work."""

from __future__ import annotations

import os
import resource
import sys
import threading
import time
from dataclasses import dataclass, field

_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def current_rss_bytes() -> int | None:
    """Resident set size of this process now, or None where /proc is unavailable."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            return int(statm.read().split()[1]) * _PAGE_SIZE
    except OSError:
        return None


def lifetime_peak_rss_bytes() -> int:
    """Peak resident set size of this process since it started."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # Linux reports KiB.


@dataclass
class ResourceMonitor:
    """Samples RSS in a background thread; use as a context manager around the measured work.

    The process-wide peak (`ru_maxrss`) only ever grows, so a second model trained in the same
    process would inherit the first one's peak; sampling gives the peak inside the block itself.
    """

    interval_s: float = 0.05
    seconds: float = 0.0
    start_rss_bytes: int = 0
    peak_rss_bytes: int = 0
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    def _sample(self) -> None:
        while not self._stop.wait(self.interval_s):
            rss = current_rss_bytes()
            if rss is not None:
                self.peak_rss_bytes = max(self.peak_rss_bytes, rss)

    def __enter__(self) -> ResourceMonitor:
        rss = current_rss_bytes()
        self.start_rss_bytes = rss if rss is not None else lifetime_peak_rss_bytes()
        self.peak_rss_bytes = self.start_rss_bytes
        if rss is not None:
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        self._started = time.perf_counter()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.seconds = time.perf_counter() - self._started
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            rss = current_rss_bytes()
            self.peak_rss_bytes = max(self.peak_rss_bytes, rss or 0)
        else:
            self.peak_rss_bytes = lifetime_peak_rss_bytes()

    def as_dict(self) -> dict[str, float]:
        """The measurements in seconds and MiB, for metrics files."""
        mib = 1024 * 1024
        return {
            "seconds": round(self.seconds, 3),
            "start_rss_mib": round(self.start_rss_bytes / mib, 1),
            "peak_rss_mib": round(self.peak_rss_bytes / mib, 1),
            "peak_rss_increase_mib": round((self.peak_rss_bytes - self.start_rss_bytes) / mib, 1),
        }
