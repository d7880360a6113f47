"""Operator actions (jobqueue.admin and the jobrunner commands) on every backend."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert, update

from jobqueue import JobCall, JobQueue, job
from jobqueue import admin as admin_module
from jobqueue.admin import NotFoundError
from jobqueue.cli import main
from jobqueue.schema import CANCELLED, FAILED, PENDING, SUCCEEDED, job_cancellations, job_queue
from jobqueue.store import attempts
from jobqueue.testing import drain


@job(name="admin.ok")
def ok(n: int = 0) -> None: ...


@job(name="admin.bad", max_attempts=1)
def bad() -> None:
    raise ValueError("broken")


def age(jq: JobQueue, ids: list[str], *, by: timedelta) -> None:
    """Pretend these jobs finished ``by`` ago."""
    with jq.transaction() as connection:
        connection.execute(
            update(job_queue)
            .where(job_queue.c.id.in_(ids))
            .values(finished_at=datetime.now(UTC) - by)
        )


def test_list_filters_and_pages_newest_first(jq: JobQueue) -> None:
    handles = jq.enqueue_many([ok.call(i) for i in range(5)] + [bad.using(queue="other").call()])
    admin = jq.admin
    assert [j.id for j in admin.list_jobs()] == [h.id for h in reversed(handles)]
    assert [j.queue for j in admin.list_jobs(queue="other")] == ["other"]
    assert len(admin.list_jobs(name="admin.ok")) == 5
    first = admin.list_jobs(limit=2)
    second = admin.list_jobs(limit=2, before=first[-1].id)
    assert [j.id for j in first + second] == [h.id for h in reversed(handles)][:4]
    with pytest.raises(ValueError, match="unknown status"):
        admin.list_jobs(status="done")


def test_retry_moves_only_failed_or_cancelled_jobs_and_keeps_attempts(jq: JobQueue) -> None:
    failed = bad.enqueue()
    waiting = ok.enqueue()
    drain(jq, queues=["default"], max_jobs=1)  # the failing job is older: it runs first
    assert jq.get_job(failed.id).status == FAILED  # type: ignore[union-attr]
    assert jq.admin.retry([failed.id, waiting.id]) == [failed.id]
    row = jq.get_job(failed.id)
    assert row is not None
    assert (row.status, row.failed_attempts, row.attempts, row.finished_at) == (PENDING, 0, 1, None)
    with pytest.raises(NotFoundError, match="nope"):
        jq.admin.retry([failed.id, "nope"])


def test_retry_all_failed_by_queue(jq: JobQueue) -> None:
    a = bad.using(queue="a").enqueue()
    b = bad.using(queue="b").enqueue()
    drain(jq)
    assert jq.admin.retry_all_failed(queue="a") == [a.id]
    assert jq.get_job(b.id).status == FAILED  # type: ignore[union-attr]
    assert jq.admin.retry_all_failed() == [b.id]


def test_cancel_pending_jobs_never_run_and_running_ones_are_asked(jq: JobQueue) -> None:

    pending = ok.enqueue()
    running = ok.enqueue()
    done = ok.enqueue()
    with jq.transaction() as connection:
        connection.execute(
            update(job_queue).where(job_queue.c.id == running.id).values(status="running")
        )
        connection.execute(
            update(job_queue).where(job_queue.c.id == done.id).values(status=SUCCEEDED)
        )
    result = jq.admin.cancel([pending.id, running.id, done.id])
    assert (result.cancelled, result.requested, result.unchanged) == (
        [pending.id],
        [running.id],
        [done.id],
    )
    assert jq.get_job(pending.id).status == CANCELLED  # type: ignore[union-attr]
    assert drain(jq) == {}
    with jq.transaction(read_only=True) as connection:
        assert attempts.cancellation_requests(connection, [running.id]) == [running.id]
    jq.admin.cancel([running.id])  # asking twice is harmless


def test_discard_deletes_only_finished_failures(jq: JobQueue) -> None:
    failed = bad.enqueue()
    drain(jq)
    pending = ok.enqueue()
    assert jq.admin.discard([failed.id, pending.id]) == [failed.id]
    assert jq.get_job(failed.id) is None and jq.get_job(pending.id) is not None


def test_discard_takes_the_stop_request_a_failed_job_kept(jq: JobQueue) -> None:
    """A job asked to stop while running that then fails keeps the request (only a retry
    clears it); discarding the job deletes it too."""
    handle = ok.enqueue()
    with jq.transaction() as connection:
        connection.execute(
            update(job_queue)
            .where(job_queue.c.id == handle.id)
            .values(status=FAILED, finished_at=datetime.now(UTC))
        )
        connection.execute(
            insert(job_cancellations).values(job_id=handle.id, requested_at=datetime.now(UTC))
        )
    assert jq.admin.discard([handle.id]) == [handle.id]
    with jq.transaction(read_only=True) as connection:
        assert attempts.cancellation_requests(connection, [handle.id]) == []


def test_paused_queues_are_not_claimed_until_resumed(jq: JobQueue) -> None:
    ok.using(queue="mail").enqueue()
    ok.using(queue="other").enqueue()
    assert jq.admin.pause("mail") is True
    assert jq.admin.pause("mail") is False
    assert drain(jq) == {SUCCEEDED: 1}
    summaries = {s.queue: s for s in jq.admin.queues()}
    assert summaries["mail"].paused and summaries["mail"].due == 1
    assert summaries["mail"].latency_seconds is not None and summaries["mail"].latency_seconds >= 0
    ok.using(queue="mail").enqueue()  # enqueue still works while paused
    assert jq.admin.resume("mail") is True
    assert jq.admin.resume("mail") is False
    assert drain(jq) == {SUCCEEDED: 2}


def test_stats_count_outcomes_and_survive_pruning(jq: JobQueue) -> None:
    @job(name="admin.flaky", max_attempts=2, backoff=0)
    def flaky() -> None:
        raise RuntimeError("x")

    handles = jq.enqueue_many([ok.call(i) for i in range(3)] + [flaky.call()])
    drain(jq)
    stats = jq.admin.stats(minutes=5)
    assert (stats.succeeded, stats.retried, stats.failed, stats.discarded) == (3, 1, 1, 0)
    assert stats.processed == 4 and stats.failure_rate == pytest.approx(2 / 5)
    age(jq, [h.id for h in handles], by=timedelta(days=2))
    assert jq.admin.prune(status=SUCCEEDED, older_than=timedelta(days=1)) == 3
    assert jq.admin.stats(minutes=5).succeeded == 3


def test_prune_respects_age_and_works_in_batches(
    jq: JobQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(admin_module, "PRUNE_BATCH", 3)
    handles = jq.enqueue_many([ok.call(i) for i in range(10)])
    drain(jq)
    age(jq, [h.id for h in handles[:8]], by=timedelta(hours=2))
    assert jq.admin.prune(status=SUCCEEDED, older_than=timedelta(hours=1)) == 8
    assert jq.count_jobs() == 2
    with pytest.raises(ValueError):
        jq.admin.prune(status=PENDING, older_than=timedelta(0))


def test_operator_commands(jq: JobQueue, capsys: pytest.CaptureFixture[str]) -> None:
    url = ["--database-url", jq.database_url]
    failed = bad.enqueue()
    drain(jq)
    capsys.readouterr()  # drain's own log lines

    assert main(["jobs", "list", "--status", "failed", "--json", *url]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [j["id"] for j in listed] == [failed.id]

    assert main(["jobs", "show", failed.id, *url]) == 0
    shown = capsys.readouterr().out
    assert "ValueError: broken" in shown and "Traceback" in shown

    assert main(["jobs", "retry", failed.id, *url]) == 0
    assert "retried 1 job(s)" in capsys.readouterr().out

    assert main(["queues", "pause", "default", *url]) == 0
    assert capsys.readouterr().out == "queue 'default' paused\n"
    assert main(["queues", "--json", *url]) == 0
    queues = json.loads(capsys.readouterr().out)
    assert queues[0]["queue"] == "default" and queues[0]["paused"] is True

    assert main(["stats", "--json", *url]) == 0
    assert json.loads(capsys.readouterr().out)["1h"]["failed"] == 1

    assert main(["jobs", "show", "no-such-id", *url]) == 1
    err = capsys.readouterr().err
    assert err.strip() == "jobrunner jobs: error: no job with id 'no-such-id'"

    with pytest.raises(SystemExit) as usage:
        main(["jobs", "list", "--status", "done", *url])
    assert usage.value.code == 2

    assert main(["prune", "--status", "failed", "--older-than", "30d", *url]) == 0
    assert "pruned 0 failed job(s)" in capsys.readouterr().out


def test_cli_output_escapes_control_characters_and_shows_arguments_as_json(
    jq: JobQueue, capsys: pytest.CaptureFixture[str]
) -> None:
    """A job's name, queue, arguments and error are data from producers and job code: printed
    raw, an escape sequence in them retitles the terminal or forges a log line."""
    url = ["--database-url", jq.database_url]
    evil = "\x1b]0;pwned\x07\rFAKE LOG\u202e"
    handle = jq.enqueue_many([JobCall("admin.nope", args=[evil, {"k": 1}], queue="q" + evil)])[0]
    with jq.transaction() as connection:
        connection.execute(
            update(job_queue).where(job_queue.c.id == handle.id).values(last_error=evil)
        )
    for command in (["jobs", "list"], ["jobs", "show", handle.id], ["queues"]):
        assert main([*command, *url]) == 0
        out = capsys.readouterr().out
        assert "\x1b" not in out and "\r" not in out and "\x07" not in out, command
        assert "\u202e" not in out, command
        assert "\\x1b]0;pwned\\x07\\x0dFAKE LOG\\u202e" in out, (command, out)
    assert main(["jobs", "show", handle.id, *url]) == 0
    shown = capsys.readouterr().out
    assert 'args:            ["\\u001b]0;pwned' in shown  # JSON, as stored, not a Python repr
    assert '{"k": 1}' in shown and "{'k': 1}" not in shown


def test_jobs_list_shows_failures_against_the_limit(
    jq: JobQueue, capsys: pytest.CaptureFixture[str]
) -> None:
    handle = jq.enqueue_many([JobCall("admin.ok", max_attempts=3)])[0]
    with jq.transaction() as connection:
        connection.execute(
            update(job_queue)
            .where(job_queue.c.id == handle.id)
            .values(attempts=2, failed_attempts=1)
        )
    assert main(["jobs", "list", "--database-url", jq.database_url]) == 0
    header, row = capsys.readouterr().out.splitlines()[:2]
    assert "FAILURES" in header and "1/3" in row.split()


def test_operator_commands_on_an_unmigrated_database_say_run_migrate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """And on SQLite they leave no empty database file behind."""
    path = tmp_path / "never-migrated.db"
    for command in (["jobs", "list"], ["queues"], ["stats"]):
        assert main([*command, "--database-url", f"sqlite:///{path}"]) == 1
        err = capsys.readouterr().err
        assert "run `jobrunner migrate" in err and "Traceback" not in err, err
    assert not path.exists()


def test_pausing_a_queue_with_no_jobs_is_refused_unless_ahead(
    jq: JobQueue, capsys: pytest.CaptureFixture[str]
) -> None:
    url = ["--database-url", jq.database_url]
    assert main(["queues", "pause", "defualt", *url]) == 1  # a typo
    assert "has no jobs" in capsys.readouterr().err
    assert jq.admin.queues() == []
    assert main(["queues", "pause", "--ahead", "nightly", *url]) == 0
    assert capsys.readouterr().out == "queue 'nightly' paused\n"
    assert [q.queue for q in jq.admin.queues() if q.paused] == ["nightly"]


def test_stats_columns_say_what_they_count(
    jq: JobQueue, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["stats", "--database-url", jq.database_url]) == 0
    out = capsys.readouterr().out
    header = out.splitlines()[0]
    assert "FAILED ATTEMPTS" in header and "CANCELLED BY JOB" in header
    assert "FAILURE RATE" not in header and "DISCARDED" not in header
    assert "among all attempts" in out and "`jobs discard` deletes jobs" in out


def test_cli_refuses_ids_and_filters_no_job_can_have_in_one_line(
    jq: JobQueue, capsys: pytest.CaptureFixture[str]
) -> None:
    url = ["--database-url", jq.database_url]
    assert main(["jobs", "show", "abc\x00def", *url]) == 1
    assert "no job with id" in capsys.readouterr().err
    assert main(["jobs", "list", "--queue", "a\x00b", *url]) == 1
    err = capsys.readouterr().err
    assert "NUL" in err and "Traceback" not in err
