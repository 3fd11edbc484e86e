"""Memory available to this process, for the backends' checks before any work, and the size of the
last-level cache, for the backends' batch sizes.
"""

from __future__ import annotations

import os

__all__ = ["available_memory", "last_level_cache"]

#: assumed where the system does not tell (the shared L3 of the machines pyspb was measured on)
DEFAULT_LAST_LEVEL_CACHE = 32 * 2**20


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


def last_level_cache(folder: str = "/sys/devices/system/cpu/cpu0/cache") -> int:
    """Bytes of the largest cache of cpu0 (usually the L3 it shares with other cores), or
    :data:`DEFAULT_LAST_LEVEL_CACHE` if unknown.

    Linux: the largest ``size`` under ``folder``/index*/ (e.g. ``32768K``).
    """
    sizes: list[int] = []
    try:
        entries = os.listdir(folder)
    except OSError:
        entries = []
    for entry in entries:
        try:
            with open(os.path.join(folder, entry, "size")) as file:
                text = file.read().strip().upper()
        except OSError:
            continue
        scale = {"K": 2**10, "M": 2**20, "G": 2**30}.get(text[-1:], 1)
        try:
            sizes.append(int(text.rstrip("KMG")) * scale)
        except ValueError:
            continue
    return max(sizes) if sizes else DEFAULT_LAST_LEVEL_CACHE
