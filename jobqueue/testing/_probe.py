"""The job profile A's rows run: it counts each start of its body, and waits while a proof holds
it open. Importable as a worker's ``--app`` (it imports nothing of the harness)."""

from __future__ import annotations

import threading
from collections import Counter

from jobqueue.context import current_job
from jobqueue.jobs import job

PROBE_JOB = "jobqueue.due_work.recovery_probe"
#: Longest a held job waits for its proof to let it go.
HOLD_TIMEOUT = 60.0

_lock = threading.Lock()
_starts: Counter[str] = Counter()
_began: dict[str, threading.Event] = {}
_gates: dict[str, threading.Event] = {}


@job(name=PROBE_JOB, backoff=0)
def recovery_probe() -> None:
    running = current_job()
    assert running is not None
    with _lock:
        _starts[running.id] += 1
        began, gate = _began.get(running.id), _gates.get(running.id)
    if began is not None:
        began.set()
    if gate is not None:
        gate.wait(HOLD_TIMEOUT)


def starts(job_id: str) -> int:
    """How many times the job's body has started in this process."""
    with _lock:
        return _starts[job_id]


def hold(job_id: str) -> tuple[threading.Event, threading.Event]:
    """(set once the job's body has begun, set to let it end): the job waits at its start."""
    began, gate = threading.Event(), threading.Event()
    with _lock:
        _began[job_id], _gates[job_id] = began, gate
    return began, gate


def release_all() -> None:
    """Let every held job end."""
    with _lock:
        gates = list(_gates.values())
        _gates.clear()
        _began.clear()
    for gate in gates:
        gate.set()
