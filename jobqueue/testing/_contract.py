"""jobqueue's contract with its worker, for any app's handoffs: what the queue itself
guarantees (ownership, recovery) bound to production once, and a disposition for the rest."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any

from due_work_harness import (
    Adoption,
    Claim,
    Decline,
    DueWorkContract,
    HandoffHistory,
    NotApplicable,
    Profile,
    SafetyContract,
    SafetyProfile,
)

from jobqueue.testing import _ownership, _recovery
from jobqueue.testing._active import active, delivery

AT_LEAST_ONCE = (
    "jobqueue runs a job at least once: a worker that dies after a job's call to another "
    "service and before its outcome is written runs it again; whether the call repeats is the "
    "job's (current_job().idempotency_key makes it once)"
)


def bound_ownership() -> AbstractContextManager[Any]:
    """Profile B's binding for the running test.

    # ARRANGE: a due job on a queue of its own, per proof.
    # REAL PRODUCTION: claims.claim_jobs, attempts' fenced writes, processes.heartbeat and
    #   runtime.maintenance.rescue (see jobqueue.testing._ownership).
    # EXTERNAL SEAM: a dead owner is a stand-in process really killed.
    # OBSERVE: the job row and its owner's heartbeat.
    """
    return _ownership.ownership(active().jobqueue)


def bound_recovery() -> AbstractContextManager[Any]:
    """Profile A's binding for the running test.

    # ARRANGE: probe jobs on a queue of their own, aged by scheduled_for; the retried,
    #   released, rescued and terminal ones made by production's claim, fenced writes, rescue
    #   and cancel (see jobqueue.testing._recovery.Rows).
    # REAL PRODUCTION: JobQueue.due_jobs is the selection; the tick is runtime.maintenance.rescue
    #   then a real Worker's claim-loop cycle and dispatcher; explain_due_jobs gives the plan,
    #   Admin.queues the operator's due figure, and `jobrunner work` is the schedule.
    # EXTERNAL SEAM: a dead owner is a stand-in process really killed.
    # OBSERVE: what the tick's poll claimed, in order; the probe job's starts.
    """
    return _recovery.recovery(active().jobqueue)


def contract(
    name: str,
    *,
    handoffs: Sequence[HandoffHistory[Any, Any]],
    handoff_gaps: Mapping[str, str] | None = None,
) -> DueWorkContract:
    """A :class:`~due_work_harness.DueWorkContract` for ``handoffs`` run by jobqueue's worker
    and recovered by ``jobrunner work --burst``, beside jobqueue's recovery (profile A) and
    ownership (profile B); declare each divergence you accept in
    ``handoff_gaps`` with its reason (a legacy adoption: jobqueue predates its contract)."""
    return DueWorkContract(
        name=name,
        adoption=Adoption.LEGACY,
        transactional=True,
        profiles={
            Profile.A: Claim(),
            Profile.B: Claim(),
            Profile.C: Decline(AT_LEAST_ONCE),
            Profile.D: NotApplicable(
                "pruning deletes only succeeded jobs older than the retention: no owed row"
            ),
            Profile.E: NotApplicable(
                "one worker settles each attempt; the fence refuses any other write to it"
            ),
            Profile.F: NotApplicable("the obligation is the job row itself, not a derived fact"),
        },
        safety=SafetyContract(
            name=name,
            adoption=Adoption.LEGACY,
            profiles={
                SafetyProfile.REPLAY_SAFE_EXECUTION: Decline(AT_LEAST_ONCE),
                SafetyProfile.BOUNDED_RETRY: Decline(
                    "max_attempts bounds every job's failed attempts; proven by the worker's "
                    "own tests (tests/store/test_execution.py), not by a binding here"
                ),
            },
        ),
        sweep=bound_recovery,
        ownership=bound_ownership,
        handoffs=tuple(handoffs),
        handoff_delivery=delivery(f"{name}: jobrunner work --burst"),
        handoff_gaps=dict(handoff_gaps or {}),
    )
