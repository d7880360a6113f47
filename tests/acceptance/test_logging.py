"""Logging that joins the host's (issue 14, item 4), with a real ``jobrunner work --burst``.

Three hosts: none (jobqueue's JSON lines), a structlog host whose stdlib handler has a
``ProcessorFormatter`` (every line in its format), and a stdlib-only host
(``logging.basicConfig(filename=…)``: jobqueue's events are records of ``jobqueue.*`` loggers).
Each with forked workers and with fresh interpreters (an app that starts a thread at import
makes the supervisor start ``python -m jobqueue.runtime.spawn``). The host modules are written
into tmp_path; the jobs (``logging_jobs``) say how their worker was started. SQLite only: where
log lines go does not depend on the database.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import logging_jobs
import pytest

pytestmark = pytest.mark.parametrize("started", ["forked", "fresh"])

STRUCTLOG_HOST = """
import json, logging, structlog

shared = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
]

def render(_, __, event_dict):
    return "HOST " + json.dumps(event_dict, default=str, sort_keys=True)

structlog.configure(
    processors=[
        structlog.stdlib.filter_by_level,
        *shared,
        structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
    ],
    logger_factory=structlog.stdlib.LoggerFactory(),
    wrapper_class=structlog.stdlib.BoundLogger,
    cache_logger_on_first_use=True,
)
handler = logging.StreamHandler()
handler.setFormatter(
    structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            render,
        ],
    )
)
logging.getLogger().addHandler(handler)
logging.getLogger().setLevel(logging.INFO)
"""

STDLIB_HOST = """
import json, logging

class Fields(logging.Handler):
    def emit(self, record):
        fields = {key: getattr(record, key, None) for key in (
            "name", "levelname", "event", "job_id", "job_name", "queue", "attempt", "started")}
        fields["has_traceback"] = record.exc_info is not None
        with open({fields_file!r}, "a") as out:
            out.write(json.dumps(fields) + "\\n")

logging.basicConfig(
    filename={log_file!r}, level=logging.INFO, format="%(name)s|%(levelname)s|%(message)s"
)
logging.getLogger().addHandler(Fields())
"""

THREAD_AT_IMPORT = """
import threading
threading.Thread(target=threading.Event().wait, daemon=True, name="host-app-thread").start()
"""


def run_burst(
    jq: Any, work: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, started: str, *apps: str
) -> tuple[Any, dict[str, str]]:
    """Enqueue one job of each kind, run ``jobrunner work --burst`` with the host's apps, and
    return the runner and the job ids."""
    (tmp_path / "thread_at_import.py").write_text(THREAD_AT_IMPORT)
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])
    )
    ids = {
        name: getattr(logging_jobs, name).using(jobqueue=jq).enqueue().id
        for name in ("greet", "boom", "flaky")
    }
    args = [arg for app in apps for arg in ("--app", app)]
    if started == "fresh":
        args += ["--app", "thread_at_import"]
    runner = work("--burst", *args, "--app", "logging_jobs")
    assert runner.wait(60) == 0, runner.output()[-3000:]
    return runner, ids


def parsed(lines: list[str], prefix: str) -> list[dict[str, Any]]:
    events = []
    for line in lines:
        assert line.startswith(prefix), f"a line not in the expected format: {line!r}"
        event = json.loads(line.removeprefix(prefix))
        assert isinstance(event, dict), line
        events.append(event)
    return events


def only(events: list[dict[str, Any]], **match: object) -> dict[str, Any]:
    found = [e for e in events if all(e.get(key) == value for key, value in match.items())]
    assert len(found) == 1, f"expected one event like {match}, found {found}"
    return found[0]


def check_events(events: list[dict[str, Any]], ids: dict[str, str], started: str) -> None:
    """What every host should get, whatever renders it: process events under their logger
    names, job events with their fields, tracebacks of failures, and the job's own line."""
    only(events, event="process_started", kind="supervisor", logger="jobqueue.supervisor")
    only(events, event="process_started", kind="worker", logger="jobqueue.worker")
    failed = only(events, event="job_failed", logger="jobqueue.worker")
    assert (failed["job_id"], failed["job_name"]) == (ids["boom"], "logging_jobs.boom")
    assert (failed["queue"], failed["attempt"]) == ("default", 1)
    assert "Traceback (most recent call last)" in failed["exception"]
    assert "ValueError: boom from the job" in failed["exception"]
    retry = only(events, event="job_retry_scheduled", job_id=ids["flaky"])
    assert "KeyError: 'flaky the first time'" in retry["exception"]
    own = only(events, event="host_job_line", logger="logging_jobs")
    assert (own["job_id"], own["job_name"], own["attempt"]) == (
        ids["greet"],
        "logging_jobs.greet",
        1,
    )
    assert own["started"] == started


def test_without_a_host_configuration_jobqueue_writes_json_lines_with_logger_names(
    jq, work, tmp_path, monkeypatch, started
) -> None:
    runner, ids = run_burst(jq, work, tmp_path, monkeypatch, started)
    lines = [line for line in runner.output().splitlines() if line.strip()]
    check_events(parsed(lines, ""), ids, started)  # each line one JSON object


def test_a_structlog_host_gets_every_line_in_its_own_format(
    jq, work, tmp_path, monkeypatch, started
) -> None:
    (tmp_path / "host_structlog.py").write_text(STRUCTLOG_HOST)
    runner, ids = run_burst(jq, work, tmp_path, monkeypatch, started, "host_structlog")
    lines = [line for line in runner.output().splitlines() if line.strip()]
    check_events(parsed(lines, "HOST "), ids, started)


def test_a_stdlib_host_gets_jobqueue_events_as_records_of_jobqueue_loggers(
    jq, work, tmp_path, monkeypatch, started
) -> None:
    log_file, fields_file = tmp_path / "host.log", tmp_path / "fields.jsonl"
    host = STDLIB_HOST.replace("{fields_file!r}", repr(str(fields_file)))
    (tmp_path / "host_stdlib.py").write_text(host.replace("{log_file!r}", repr(str(log_file))))
    runner, ids = run_burst(jq, work, tmp_path, monkeypatch, started, "host_stdlib")
    assert runner.output().strip() == "", "jobqueue wrote beside the host's logging"
    records = [json.loads(line) for line in fields_file.read_text().splitlines()]
    names = {r["name"] for r in records}
    assert {"jobqueue.supervisor", "jobqueue.worker", "logging_jobs"} <= names
    assert all(name.startswith("jobqueue.") for name in names - {"logging_jobs"}), names
    only(records, event="process_started", name="jobqueue.supervisor")
    failed = only(records, event="job_failed", name="jobqueue.worker", levelname="ERROR")
    assert failed["job_id"] == ids["boom"] and failed["job_name"] == "logging_jobs.boom"
    assert (failed["queue"], failed["attempt"], failed["has_traceback"]) == ("default", 1, True)
    assert only(records, event="job_retry_scheduled", job_id=ids["flaky"])["has_traceback"]
    own = only(records, event="host_job_line", name="logging_jobs")
    assert (own["job_id"], own["started"]) == (ids["greet"], started)
    # The host's plain formatter: the event and its fields as text, the traceback after it.
    text = log_file.read_text()
    line = f"jobqueue.worker|ERROR|job_failed job_id={ids['boom']} job_name=logging_jobs.boom "
    assert line + "queue=default attempt=1 " in text
    after = text[text.index(line) :]
    assert "Traceback (most recent call last)" in after
    assert "ValueError: boom from the job" in after
