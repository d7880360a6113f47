"""Property-based state machine over the store API, on every backend (issue 5, item 10).

Hypothesis drives random sequences of enqueue, claim, start marks, succeed, fail (retry or
final), durable steps recorded by the attempt holding a job, stale and impostor writes (of
outcomes and of steps), process death, rescue (which counts an attempt only if its start was
recorded), restart, operator cancel, retry (also ``--from-step``), discard and prune against a
real database, and after every step reads all rows back and checks them against a model and
against the previous snapshot:

- every job is in exactly one of the six statuses, and matches the model's status, attempts,
  failed_attempts and claimed_by;
- a finished job (succeeded, failed, cancelled) changes status only through the operator's
  retry, which moves only failed and cancelled jobs, back to pending;
- ``attempts`` never decreases; ``failed_attempts`` never exceeds it and only the operator's
  retry lowers it (to 0);
- a running job has a ``claimed_by`` and a ``started_at``; exactly the finished jobs have a
  ``finished_at``; the running rows are exactly the claims workers hold, and no claim ever
  hands out an (id, attempts) fence that was handed out before;
- a claim takes the first due pending jobs in (priority, scheduled_for, id) order, and a
  process without a row claims nothing;
- a write fenced by a stale claim (a finished, rescued or re-claimed attempt) or by the wrong
  process returns an empty set / False and changes no column of any row;
- ``job_cancellations`` holds exactly the running jobs an operator asked to stop (until the
  operator retries or deletes them);
- ``job_steps`` holds exactly the steps the model recorded: only an attempt that holds its job
  records one (``hold_attempt`` then ``record_step``, in one transaction, as
  :mod:`jobqueue.steps` does); a stale or impostor attempt's ``hold_attempt`` is False and it
  records nothing; ``retry --from-step`` drops that step and the ones recorded after it, only
  for a job that moves, and a name the job never recorded changes nothing; discard and prune
  delete a job's steps with it.

As the product does (issue 5, item 5: "the reverse order makes the rescuer a no-op"), the fence
is the job row, not the process row: a process declared dead whose job was not rescued yet can
still finish that job, and the rescue then has nothing to do.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import ClassVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import Connection, delete, select

from jobqueue import JobCall, JobQueue
from jobqueue.admin import CancelResult, StepNotFoundError
from jobqueue.runtime import lifecycle
from jobqueue.runtime.maintenance import rescue_orphans
from jobqueue.schema import (
    BLOCKED,
    CANCELLED,
    FAILED,
    PENDING,
    RUNNING,
    STATUSES,
    SUCCEEDED,
    TERMINAL_STATUSES,
    job_cancellations,
    job_errors,
    job_steps,
    metadata,
)
from jobqueue.store import attempts, claims, processes
from jobqueue.store import steps as store_steps
from jobqueue.store.claimed import ClaimedJob
from jobqueue.store.jobs import JobRecord

pytestmark = pytest.mark.chaos

SCALE = float(os.environ.get("JOBQUEUE_TEST_SCALE", "1"))
MAX_EXAMPLES = max(1, round(25 * SCALE))
STEPS = 50
PROCESS_IDS = ("sm-worker-a", "sm-worker-b", "sm-worker-c")
JOB_NAME = "sm.job"
STEP_NAMES = ("fetch", "render", "upload")

#: A recorded step as the machine expects its row: (attempt, done, value, recorded_at).
StepRow = tuple[int, bool, str, datetime]


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class ModelJob:
    """What the machine expects one row to hold."""

    id: str
    max_attempts: int
    status: str = PENDING
    attempts: int = 0
    failed_attempts: int = 0
    claimed_by: str | None = None
    started: bool = False  # the current attempt's start is recorded
    steps: dict[str, StepRow] = field(default_factory=dict)

    def expected(self) -> tuple[str, int, int, str | None, int]:
        return (
            self.status,
            self.attempts,
            self.failed_attempts,
            self.claimed_by,
            self.max_attempts,
        )


def _actual(row: JobRecord) -> tuple[str, int, int, str | None, int]:
    return (row.status, row.attempts, row.failed_attempts, row.claimed_by, row.max_attempts)


def _by_fence(job: ClaimedJob) -> tuple[str, int]:
    return job.fence


class JobStateMachine(RuleBasedStateMachine):
    """The store-level job life cycle; subclass it with ``queue_under_test`` set."""

    queue_under_test: ClassVar[JobQueue]

    def __init__(self) -> None:
        super().__init__()
        self.jq = self.queue_under_test
        with self.jq.transaction() as connection:
            for table in reversed(metadata.sorted_tables):
                connection.execute(delete(table))
            for process_id in PROCESS_IDS:
                lifecycle.register(connection, process_id=process_id, kind="worker")
        self.model: dict[str, ModelJob] = {}
        self.registered: set[str] = set(PROCESS_IDS)
        self.holding: dict[str, ClaimedJob] = {}  # job id -> the claim its running row carries
        self.stale: list[ClaimedJob] = []  # claims whose attempt is over (finished or rescued)
        self.fences_issued: set[tuple[str, int]] = set()
        self.cancel_requested: set[str] = set()
        self.reopened: set[str] = set()  # ids the operator retried in the current step
        self.previous: dict[str, JobRecord] = {}  # the rows after the previous step
        self.previous_steps: dict[tuple[str, str], StepRow] = {}  # job_steps, likewise
        self.previous_history: Counter[str] = Counter()  # job_errors rows per job, likewise
        self.sequence = 0
        self.step_clock = _now()  # recorded_at of the last step: each later one is later

    # -- reading ----------------------------------------------------------------------------

    def _rows(self) -> dict[str, JobRecord]:
        return {row.id: row for row in self.jq.admin.list_jobs(limit=10000)}

    def _steps(self, connection: Connection | None = None) -> dict[tuple[str, str], StepRow]:
        if connection is None:
            with self.jq.transaction(read_only=True) as connection:
                return self._steps(connection)
        rows = connection.execute(job_steps.select()).mappings().all()
        return {
            (r["job_id"], r["name"]): (r["attempt"], bool(r["done"]), r["value"], r["recorded_at"])
            for r in rows
        }

    def _history(self) -> Counter[str]:
        with self.jq.transaction(read_only=True) as connection:
            return Counter(connection.execute(select(job_errors.c.job_id)).scalars())

    def _expected_steps(self) -> dict[tuple[str, str], StepRow]:
        return {
            (job_id, name): row
            for job_id, model in self.model.items()
            for name, row in model.steps.items()
        }

    def _side_rows(self) -> tuple[set[str], dict[tuple[str, str], StepRow]]:
        """The stop requests and the steps, read in one transaction."""
        with self.jq.transaction(read_only=True) as connection:
            cancellations = connection.execute(select(job_cancellations.c.job_id)).scalars()
            return set(cancellations), self._steps(connection)

    def _retire(self, job: ClaimedJob) -> None:
        """The attempt ``job`` stood for is over: keep its claim for stale writes."""
        del self.holding[job.id]
        self.stale.append(job)

    def _draw_held(self, data: st.DataObject) -> ClaimedJob:
        return data.draw(st.sampled_from(sorted(self.holding.values(), key=_by_fence)), label="job")

    # -- producer ---------------------------------------------------------------------------

    @initialize(count=st.integers(1, 5), max_attempts=st.integers(1, 3))
    def first_jobs(self, count: int, max_attempts: int) -> None:
        """Every example starts with some work."""
        self.enqueue(count, max_attempts)

    @rule(count=st.integers(1, 3), max_attempts=st.integers(1, 3))
    def enqueue(self, count: int, max_attempts: int) -> None:
        calls = []
        for _ in range(count):
            self.sequence += 1
            calls.append(JobCall(JOB_NAME, args=(self.sequence,), max_attempts=max_attempts))
        handles = self.jq.enqueue_many(calls)
        assert len({handle.id for handle in handles}) == count
        for handle in handles:
            assert not handle.existing
            assert handle.id not in self.model
            self.model[handle.id] = ModelJob(handle.id, max_attempts)

    # -- worker -----------------------------------------------------------------------------

    @rule(process_id=st.sampled_from(PROCESS_IDS), limit=st.integers(1, 3))
    def claim(self, process_id: str, limit: int) -> None:
        now = _now()
        with self.jq.transaction() as connection:
            got = claims.claim_jobs(
                connection, process_id=process_id, queues=None, limit=limit, now=now
            )
        if process_id in self.registered:
            due = sorted(
                (
                    r
                    for r in self.previous.values()
                    if r.status == PENDING and r.scheduled_for <= now
                ),
                key=lambda r: (r.priority, r.scheduled_for, r.id),
            )
            expected = [r.id for r in due[:limit]]
        else:
            expected = []  # a process declared dead claims nothing
        assert [job.id for job in got] == expected, "claim took the wrong jobs or order"
        for job in got:
            model = self.model[job.id]
            assert job.claimed_by == process_id
            assert job.attempts == model.attempts + 1, "a claim must count one attempt"
            assert job.failed_attempts == model.failed_attempts
            assert job.fence not in self.fences_issued, f"fence {job.fence} handed out twice"
            self.fences_issued.add(job.fence)
            model.status, model.attempts, model.claimed_by = RUNNING, job.attempts, process_id
            model.started = False
            self.holding[job.id] = job

    @precondition(lambda self: self.holding)
    @rule(data=st.data(), ran=st.lists(st.sampled_from(STEP_NAMES), max_size=2, unique=True))
    def start(self, data: st.DataObject, ran: list[str]) -> None:
        """The worker records that an attempt it holds has started (by then, the attempt may
        have finished some steps)."""
        job = self._draw_held(data)
        self._record_steps(job, ran, done=True)
        with self.jq.transaction() as connection:
            marked = attempts.mark_started(
                connection, process_id=job.claimed_by, fences=[job.fence]
            )
        if not self.model[job.id].started:  # a repeat may count 0 rows (MySQL: unchanged)
            assert marked == 1
        self.model[job.id].started = True

    @precondition(lambda self: self.holding)
    @rule(data=st.data(), with_stale_fences=st.booleans())
    def succeed(self, data: st.DataObject, with_stale_fences: bool) -> None:
        job = self._draw_held(data)
        fences = [job.fence]
        if with_stale_fences:  # the same process also reports attempts that are over
            fences += [old.fence for old in self.stale if old.claimed_by == job.claimed_by]
        with self.jq.transaction() as connection:
            done = attempts.complete_jobs(
                connection, process_id=job.claimed_by, fences=fences, now=_now()
            )
        assert set(done) == {job.id}
        self.model[job.id].status = SUCCEEDED
        self._retire(job)

    @precondition(lambda self: self.holding)
    @rule(
        data=st.data(),
        outcome=st.sampled_from(["retry", FAILED, CANCELLED]),
        ran=st.lists(st.sampled_from(STEP_NAMES), max_size=3, unique=True),
    )
    def fail(self, data: st.DataObject, outcome: str, ran: list[str]) -> None:
        """As the worker decides: retry (due at once) until max_attempts, else final; the
        attempt may have finished some steps first."""
        job = self._draw_held(data)
        self._record_steps(job, ran, done=True)
        model = self.model[job.id]
        now = _now()
        exhausted = model.failed_attempts + 1 >= model.max_attempts
        if outcome == "retry" and not exhausted:
            retry_at: datetime | None = now
            final_status, new_status = FAILED, PENDING
        else:
            retry_at = None
            final_status = CANCELLED if outcome == CANCELLED else FAILED
            new_status = final_status
        with self.jq.transaction() as connection:
            recorded = attempts.record_failure(
                connection, job, error="x", retry_at=retry_at, final_status=final_status, now=now
            )
        assert recorded is True
        model.status = new_status
        model.failed_attempts += 1
        self._retire(job)

    @precondition(lambda self: self.holding)
    @rule(
        data=st.data(),
        names=st.lists(st.sampled_from(STEP_NAMES), min_size=1, max_size=3, unique=True),
        done=st.booleans(),
    )
    def record_steps(self, data: st.DataObject, names: list[str], done: bool) -> None:
        self._record_steps(self._draw_held(data), names, done=done)

    def _record_steps(self, job: ClaimedJob, names: list[str], *, done: bool) -> None:
        """The attempt holding a job records steps, each as :mod:`jobqueue.steps` does: the
        fence, then the row, in one transaction; ``done`` False is an ``iterate``'s cursor,
        whose later saves update its row. A finished step is not recorded again (the job gets
        its record back)."""
        model = self.model[job.id]
        for name in names:
            if name in model.steps and model.steps[name][1]:
                continue
            self.sequence += 1
            value, now = str(self.sequence), self._next_step_time()
            exists = name in model.steps
            with self.jq.transaction() as connection:
                assert store_steps.hold_attempt(connection, job) is True, f"{job.fence} not held"
                store_steps.record_step(
                    connection, job, name, done=done, value=value, now=now, exists=exists
                )
            model.steps[name] = (job.attempts, done, value, now)

    def _next_step_time(self) -> datetime:
        """Now, but after the last step recorded: the machine knows the steps' order."""
        self.step_clock = max(_now(), self.step_clock + timedelta(microseconds=1))
        return self.step_clock

    @precondition(lambda self: self.stale or self.holding)
    @rule(
        data=st.data(),
        writer=st.sampled_from(["stale", "impostor"]),
        write=st.sampled_from(["complete", "retry", FAILED, "start", "step"]),
    )
    def foreign_write(self, data: st.DataObject, writer: str, write: str) -> None:
        """A write that must change nothing: a worker reporting an attempt that is over
        (finished, rescued, re-claimed since), or another process reporting the current
        attempt of a job it does not hold."""
        if writer == "stale" and self.stale:
            job = data.draw(st.sampled_from(sorted(self.stale, key=_by_fence)), label="stale")
        elif self.holding:
            held = self._draw_held(data)
            others = [p for p in PROCESS_IDS if p != held.claimed_by]
            job = replace(held, claimed_by=data.draw(st.sampled_from(others), label="impostor"))
        else:
            return
        now = _now()
        with self.jq.transaction() as connection:
            if write == "complete":
                result: object = attempts.complete_jobs(
                    connection, process_id=job.claimed_by, fences=[job.fence], now=now
                )
                assert result == {}, f"{writer} complete of {job.fence} took effect"
            elif write == "start":
                result = attempts.mark_started(
                    connection, process_id=job.claimed_by, fences=[job.fence]
                )
                assert result == 0, f"{writer} start mark of {job.fence} took effect"
            elif write == "step":  # jobqueue.steps records nothing after a refused hold
                result = store_steps.hold_attempt(connection, job)
                assert result is False, f"{writer} {job.fence} holds its job for a step"
            else:
                result = attempts.record_failure(
                    connection,
                    job,
                    error=writer,
                    retry_at=now if write == "retry" else None,
                    final_status=FAILED,
                    now=now,
                )
                assert result is False, f"{writer} failure of {job.fence} took effect"
        assert self._rows() == self.previous, f"a {writer} write changed a row"
        assert self._steps() == self.previous_steps, f"a {writer} write changed a step"

    # -- process life and rescue ------------------------------------------------------------

    def _kill(self, process_id: str) -> None:
        with self.jq.transaction() as connection:
            processes.deregister(connection, process_id)
        self.registered.discard(process_id)

    def _restart(self, process_id: str) -> None:
        with self.jq.transaction() as connection:
            lifecycle.register(connection, process_id=process_id, kind="worker")
        self.registered.add(process_id)

    def _rescue(self) -> None:
        orphans = [
            model
            for model in self.model.values()
            if model.status == RUNNING and model.claimed_by not in self.registered
        ]
        rescued = rescue_orphans(self.jq)
        assert rescued == len(orphans), f"rescued {rescued}, expected {len(orphans)}"
        for model in orphans:
            if not model.started:  # never started: handed back, not counted
                model.status = PENDING
                self._retire(self.holding[model.id])
                continue
            # The interrupted attempt counts; used up means failed, not another loop.
            exhausted = model.failed_attempts + 1 >= model.max_attempts
            model.status = FAILED if exhausted else PENDING
            model.failed_attempts += 1
            self._retire(self.holding[model.id])

    @rule(process_id=st.sampled_from(PROCESS_IDS), recover_at_once=st.booleans())
    def process_event(self, process_id: str, recover_at_once: bool) -> None:
        """A live process is declared dead (its row goes; its jobs await rescue), and with
        ``recover_at_once`` rescued and registered again under the same id; a dead one
        registers again."""
        if process_id not in self.registered:
            self._restart(process_id)
            return
        self._kill(process_id)
        if recover_at_once:
            self._rescue()
            self._restart(process_id)

    @rule()
    def rescue(self) -> None:
        self._rescue()

    # -- operator ---------------------------------------------------------------------------

    def _draw_ids(self, data: st.DataObject) -> list[str]:
        # Duplicates allowed: the operator's commands must collapse them.
        return data.draw(
            st.lists(st.sampled_from(sorted(self.model)), min_size=1, max_size=3), label="ids"
        )

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        ids = list(dict.fromkeys(self._draw_ids(data)))
        status = {job_id: self.model[job_id].status for job_id in ids}
        result = self.jq.admin.cancel(ids)
        assert result == CancelResult(
            cancelled=[i for i in ids if status[i] in (PENDING, BLOCKED)],
            requested=[i for i in ids if status[i] == RUNNING],
            unchanged=[i for i in ids if status[i] in TERMINAL_STATUSES],
        )
        for job_id in result.cancelled:
            self.model[job_id].status = CANCELLED
        self.cancel_requested.update(result.requested)

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def retry(self, data: st.DataObject) -> None:
        ids = list(dict.fromkeys(self._draw_ids(data)))
        retryable = [i for i in ids if self.model[i].status in (FAILED, CANCELLED)]
        moved = self.jq.admin.retry(ids)
        assert moved == retryable
        for job_id in moved:
            model = self.model[job_id]
            model.status, model.failed_attempts, model.claimed_by = PENDING, 0, None
            self.cancel_requested.discard(job_id)
        self.reopened.update(moved)

    @precondition(lambda self: any(model.steps for model in self.model.values()))
    @rule(data=st.data())
    def retry_from_step(self, data: st.DataObject) -> None:
        """``jobs retry ID --from-step NAME``: a failed or cancelled job moves and forgets
        NAME and every later step; any other job is left alone, steps and all; a NAME the job
        never recorded raises and changes nothing."""
        with_steps = sorted(job_id for job_id, model in self.model.items() if model.steps)
        retryable = [i for i in with_steps if self.model[i].status in (FAILED, CANCELLED)]
        if retryable and data.draw(st.booleans(), label="a failed or cancelled one"):
            with_steps = retryable
        job_id = data.draw(st.sampled_from(with_steps), label="job")
        model = self.model[job_id]
        order = sorted(model.steps, key=lambda name: (model.steps[name][3], name))
        name = data.draw(st.sampled_from([*order, "never-recorded"]), label="from_step")
        if name not in order:
            try:
                self.jq.admin.retry([job_id], from_step=name)
            except StepNotFoundError as error:
                assert f"its steps: {', '.join(map(repr, order))}" in str(error)
            else:
                raise AssertionError("a retry from a step the job never recorded went through")
            return
        moves = model.status in (FAILED, CANCELLED)
        moved = self.jq.admin.retry([job_id], from_step=name)
        assert moved == ([job_id] if moves else [])
        if moves:
            model.status, model.failed_attempts, model.claimed_by = PENDING, 0, None
            self.cancel_requested.discard(job_id)
            self.reopened.add(job_id)
            for dropped in order[order.index(name) :]:
                del model.steps[dropped]

    @precondition(lambda self: any(m.status in TERMINAL_STATUSES for m in self.model.values()))
    @rule(data=st.data(), how=st.sampled_from(["discard", SUCCEEDED, FAILED, CANCELLED]))
    def delete(self, data: st.DataObject, how: str) -> None:
        """The operator discards jobs (those failed or cancelled go), or prunes every finished
        job of a status (retention 0); their steps and stop requests go with them."""
        if how == "discard":
            ids = list(dict.fromkeys(self._draw_ids(data)))
            deleted = self.jq.admin.discard(ids)
            assert deleted == [i for i in ids if self.model[i].status in (FAILED, CANCELLED)]
            gone = set(deleted)
        else:
            gone = {job_id for job_id, model in self.model.items() if model.status == how}
            assert self.jq.admin.prune(status=how, older_than=timedelta(0)) == len(gone)
        for job_id in gone:
            del self.model[job_id]
            self.cancel_requested.discard(job_id)

    # -- invariants -------------------------------------------------------------------------

    @invariant()
    def rows_keep_the_invariants(self) -> None:
        rows = self._rows()
        assert set(rows) == set(self.model), "a job appeared or vanished"
        for job_id, row in rows.items():
            assert row.status in STATUSES, f"{job_id}: unknown status {row.status!r}"
            before = self.previous.get(job_id)
            if before is not None:
                assert row.attempts >= before.attempts, f"{job_id}: attempts went down"
                if before.status in TERMINAL_STATUSES and row.status != before.status:
                    assert job_id in self.reopened, (
                        f"{job_id}: left {before.status} for {row.status} without an operator"
                    )
                    assert before.status in (FAILED, CANCELLED) and row.status == PENDING
                if row.failed_attempts < before.failed_attempts:
                    assert job_id in self.reopened and row.failed_attempts == 0, (
                        f"{job_id}: failed_attempts went down without an operator retry"
                    )
            assert row.failed_attempts <= row.attempts, f"{job_id}: more failures than attempts"
            if row.status == RUNNING:
                assert row.claimed_by is not None and row.started_at is not None
            assert (row.finished_at is not None) == (row.status in TERMINAL_STATUSES), (
                f"{job_id}: finished_at {row.finished_at} with status {row.status}"
            )
            assert _actual(row) == self.model[job_id].expected(), f"{job_id}: row differs"
        running = sorted(
            (r.id, r.attempts, r.claimed_by) for r in rows.values() if r.status == RUNNING
        )
        held = sorted((j.id, j.attempts, j.claimed_by) for j in self.holding.values())
        assert running == held, "the running rows are not the claims workers hold"
        assert len({(job_id, attempts) for job_id, attempts, _ in running}) == len(running)
        cancellations, steps = self._side_rows()
        assert cancellations == self.cancel_requested
        assert steps == self._expected_steps(), "the job_steps rows differ from the model"
        history = self._history()
        for job_id, row in rows.items():
            # One history row per counted failure, written by the write that counted it: an
            # operator retry zeroes failed_attempts but keeps the history.
            before = self.previous.get(job_id)
            counted = row.failed_attempts - (before.failed_attempts if before else 0)
            added = history[job_id] - self.previous_history[job_id]
            assert added == max(counted, 0), f"{job_id}: {added} history rows for {counted}"
        assert set(history) <= set(rows), "history rows of a job that is gone"
        self.previous, self.previous_steps, self.previous_history = rows, steps, history
        self.reopened = set()


def test_job_state_machine(jq: JobQueue) -> None:
    class Machine(JobStateMachine):
        queue_under_test = jq

    run_state_machine_as_test(
        Machine,
        settings=settings(
            max_examples=MAX_EXAMPLES,
            stateful_step_count=STEPS,
            deadline=None,
            database=None,  # no .hypothesis/ directory in the repository
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        ),
    )
