"""This host and this process as the liveness checks see them: the host identity that makes
pids comparable, whether a pid is alive, and this process's memory (for recycling)."""

from __future__ import annotations

import os
import socket
import sys


def hostname() -> str:
    """This host as seen by pids: the hostname plus, on Linux, the boot id and the pid
    namespace, so containers that share a hostname (host networking, replicas) but not their
    pids never judge one another's processes by pid."""
    name = socket.gethostname()
    try:
        with open("/proc/sys/kernel/random/boot_id") as handle:
            boot = handle.read().strip()[:8]
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return name
    return f"{name}:{boot}:{namespace}"


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` is a live process on this host (a zombie, killed but not yet reaped by
    an init that does not reap, counts as dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    try:
        with open(f"/proc/{pid}/stat") as handle:
            state = handle.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


def resident_memory_mb() -> float:
    """Current resident set size in MB (Linux /proc; peak RSS elsewhere)."""
    try:
        with open("/proc/self/statm") as handle:
            pages = int(handle.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 1024 / 1024
    except (OSError, ValueError, IndexError):
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 1024 if sys.platform != "darwin" else peak / 1024 / 1024
