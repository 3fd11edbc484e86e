"""Memory available to this process, for the backends' checks before any work."""

from __future__ import annotations

import os

__all__ = ["available_memory"]


def available_memory() -> int | None:
    """Bytes of memory available to this process now, or None if unknown.

    Linux: ``MemAvailable`` of /proc/meminfo, lowered to the room left under a cgroup limit
    (v2 ``memory.max`` less ``memory.current``, or v1 ``memory.limit_in_bytes`` less
    ``memory.usage_in_bytes``).  Elsewhere half the physical memory (``os.sysconf``).
    """
    found: list[int] = []
    try:
        with open("/proc/meminfo") as file:
            for line in file:
                if line.startswith("MemAvailable:"):
                    found.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    for limit, usage in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
        ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"),
    ):
        try:
            with open(limit) as a, open(usage) as b:
                room = int(a.read().strip()) - int(b.read().strip())
        except (OSError, ValueError):  # absent, or "max" (no limit)
            continue
        found.append(max(room, 0))
    if found:
        return min(found)
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2
    except (AttributeError, OSError, ValueError):
        return None
