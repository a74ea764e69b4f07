"""Where the CPU went during a load test (Linux /proc): the machine as a whole, this process (the load
generator and the scripted model), the daphne and worker process trees, and the embedded PostgreSQL
and Redis servers (shared with whatever else uses them). In cores: CPU seconds per second of wall time.

The machine is shared: `other` (the machine minus everything measured here) shows how much the
figures were disturbed by other work.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat(pid: int) -> tuple[int, float, float] | None:
    """(ppid, own CPU seconds, reaped children's CPU seconds) of a process, or None if it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()  # after "pid (comm) "
    ppid = int(fields[1])
    own = (int(fields[11]) + int(fields[12])) / TICK
    reaped = (int(fields[13]) + int(fields[14])) / TICK
    return ppid, own, reaped


def _table() -> dict[int, tuple[int, float, float]]:
    table = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            row = _stat(int(entry.name))
            if row is not None:
                table[int(entry.name)] = row
    return table


def _tree_seconds(table: dict, root: int, *, include_reaped: bool) -> float:
    """CPU of a process and its live descendants (and, if asked, the descendants it already reaped)."""
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    total, stack, seen = 0.0, [root], set()
    while stack and len(seen) < 10_000:
        pid = stack.pop()
        if pid in seen or pid not in table:
            continue
        seen.add(pid)
        _, own, reaped = table[pid]
        total += own + (reaped if include_reaped else 0.0)
        stack.extend(children.get(pid, ()))
    return total


def _machine() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    total = sum(values[:8])  # guest time is already counted in user
    return (total - idle) / TICK, total / TICK


def _pid_file(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


class CpuSampler:
    """`start()`, run the load, `stop()` -> {"window_s", "cores": {...}} (None outside Linux)."""

    def __init__(self, groups: dict[str, list[int]], servers: dict[str, int | None]) -> None:
        self.groups = groups  # name -> root pids whose trees are ours (daphne, workers)
        self.servers = {name: pid for name, pid in servers.items() if pid}  # shared servers: reaped count too
        self._start: dict | None = None

    @classmethod
    def for_embedded(cls, groups: dict[str, list[int]]) -> CpuSampler:
        from alfred import embedded

        return cls(
            groups,
            {
                "postgres_server": _pid_file(embedded.PGDATA / "postmaster.pid"),
                "redis_server": _pid_file(embedded.REDIS_DIR / "redis.pid"),
            },
        )

    def _sample(self) -> dict | None:
        if not Path("/proc/stat").exists():
            return None
        table = _table()
        sample = {"wall": time.monotonic(), "machine": _machine(), "generator": sum(os.times()[:2])}
        for name, roots in self.groups.items():
            sample[name] = sum(_tree_seconds(table, root, include_reaped=False) for root in roots)
        for name, pid in self.servers.items():
            sample[name] = _tree_seconds(table, pid, include_reaped=True)
        return sample

    def start(self) -> None:
        self._start = self._sample()

    def stop(self) -> dict | None:
        end = self._sample()
        if self._start is None or end is None:
            return None
        wall = end["wall"] - self._start["wall"]
        if wall <= 0:
            return None
        cores = {}
        for name in ("generator", *self.groups, *self.servers):
            cores[name] = round((end[name] - self._start[name]) / wall, 2)
        busy = (end["machine"][0] - self._start["machine"][0]) / wall
        cores["machine_busy"] = round(busy, 2)
        cores["other"] = round(busy - sum(v for k, v in cores.items() if k != "machine_busy"), 2)
        return {"window_s": round(wall, 1), "cpus": os.cpu_count(), "cores": cores}
