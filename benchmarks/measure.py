"""Wall time and peak resident memory of a whole process tree (Python and the Spark JVM it starts), from /proc."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

PAGE = os.sysconf("SC_PAGE_SIZE")
SAMPLE_SECONDS = 0.25


def tree_rss(roots: Iterable[int]) -> int:
    """Resident bytes of the given processes and all their descendants."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            rss[int(entry)] = int(Path(f"/proc/{entry}/statm").read_text().split()[1]) * PAGE
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry))
    total, seen, stack = 0, set(), list(roots)
    while stack:
        pid = stack.pop()
        if pid in seen:
            continue
        seen.add(pid)
        total += rss.get(pid, 0)
        stack += children.get(pid, [])
    return total


class PeakSampler:
    """Samples the resident memory of some process trees in a thread until stopped; keeps the peak."""

    def __init__(self, roots: Callable[[], Iterable[int]]) -> None:
        self.roots = roots
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, tree_rss(self.roots()))
            self._stop.wait(SAMPLE_SECONDS)

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


@dataclass(frozen=True)
class Measured:
    seconds: float
    peak_bytes: int


class CommandFailed(RuntimeError):
    pass


def timed(command: list[str], env: dict[str, str], log: Path, also: Iterable[int] = ()) -> Measured:
    """Runs a command that must succeed, its output to `log`; its wall time and the peak resident memory of its
    process tree plus the trees of `also` (e.g. a Spark Connect server it uses)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as out:
        started = time.monotonic()
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        with PeakSampler(lambda: [process.pid, *also]) as sampler:
            process.wait()
        seconds = time.monotonic() - started
    if process.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-25:])
        raise CommandFailed(f"{' '.join(command)} failed ({process.returncode}); log {log}:\n{tail}")
    return Measured(seconds, sampler.peak)


def load_average() -> float:
    """The 1-minute load average: how busy the machine was when a measurement started."""
    return os.getloadavg()[0]
