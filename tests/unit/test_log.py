"""When jobqueue configures logging and when it keeps the host's (jobqueue.log), in-process.

pytest keeps its own handlers on the root logger while a test runs; each test's body runs
inside :func:`bare_root`, as a ``jobrunner`` process starts, with none."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import pytest
import structlog

from jobqueue.log import configure_logging, settle_logging


@contextlib.contextmanager
def bare_root(*handlers: logging.Handler) -> Iterator[None]:
    """The root logger with only ``handlers`` (the host's) for a while; pytest's are put back
    before the test's call ends, when pytest takes them off."""
    root, ours = logging.getLogger(), logging.getLogger("jobqueue")
    saved, level = root.handlers[:], ours.level
    root.handlers[:] = list(handlers)
    try:
        yield
    finally:
        root.handlers[:] = saved
        ours.setLevel(level)
        settle_logging()  # nothing provisional left for the next test


@pytest.fixture(autouse=True)
def _no_level_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JOBQUEUE_LOG_LEVEL", raising=False)


def test_without_a_host_configuration_jobqueue_keeps_its_own_output_cached() -> None:
    with bare_root():
        configure_logging("INFO", json=True)
        assert structlog.get_config()["cache_logger_on_first_use"] is False  # provisional
        assert settle_logging() == "jobqueue"
        assert structlog.get_config()["cache_logger_on_first_use"] is True


def test_a_structlog_configuration_made_by_the_apps_is_kept() -> None:
    with bare_root(logging.NullHandler()):  # stdlib configured too: structlog's still wins
        configure_logging("INFO", json=True)
        host = [structlog.processors.KeyValueRenderer()]
        structlog.configure(processors=host)
        assert settle_logging() == "host"
        assert structlog.get_config()["processors"] is host


def test_an_embedding_process_that_never_called_configure_logging_is_left_alone() -> None:
    with bare_root():
        before = structlog.get_config()
        assert settle_logging() == "host"
        assert structlog.get_config() == before


def test_a_stdlib_only_host_gets_records_of_jobqueue_loggers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    with bare_root(caplog.handler):
        configure_logging(None, json=True)
        assert settle_logging() == "host-stdlib"
        assert logging.getLogger("jobqueue").level == logging.NOTSET  # no level asked for
        try:
            raise ValueError("boom")
        except ValueError as error:
            failure = error
        structlog.get_logger("jobqueue.worker").error(
            "job_failed", job_id="J1", queue="mail", attempt=2, exc_info=failure, name="x y"
        )
    (record,) = caplog.records
    assert (record.name, record.levelname) == ("jobqueue.worker", "ERROR")
    assert record.getMessage() == 'job_failed job_id=J1 queue=mail attempt=2 name="x y"'
    assert (record.__dict__["job_id"], record.__dict__["attempt"]) == ("J1", 2)
    assert record.__dict__["name_"] == "x y"  # a LogRecord attribute is not overwritten
    assert record.exc_info is not None and record.exc_info[1] is failure


def test_an_explicit_level_applies_to_the_jobqueue_logger_unless_the_host_set_one() -> None:
    with bare_root(logging.NullHandler()):
        configure_logging("DEBUG", json=True)
        assert settle_logging() == "host-stdlib"
        assert logging.getLogger("jobqueue").level == logging.DEBUG
        logging.getLogger("jobqueue").setLevel(logging.ERROR)
        configure_logging("DEBUG", json=True)
        assert settle_logging() == "host-stdlib"
        assert logging.getLogger("jobqueue").level == logging.ERROR
