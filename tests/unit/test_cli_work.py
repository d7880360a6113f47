from pathlib import Path

import pytest

from jobqueue import ConfigurationError
from jobqueue.cli import build_parser
from jobqueue.cli.work import build_settings


def parse(*argv: str):  # type: ignore[no-untyped-def]
    return build_parser().parse_args(["work", *argv])


@pytest.fixture(autouse=True)
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for name in (
        "JOBQUEUE_DATABASE_URL",
        "JOBQUEUE_LISTEN_URL",
        "JOBQUEUE_HEARTBEAT_INTERVAL",
        "JOBQUEUE_DEAD_THRESHOLD",
    ):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def test_defaults_are_one_process_five_threads_all_queues(project: Path) -> None:
    settings = build_settings(parse("--app", "myapp.jobs"))
    ((worker, count),) = settings.groups
    assert (count, worker.threads, worker.queues, worker.apps) == (1, 5, None, ["myapp.jobs"])
    assert worker.database_url == f"sqlite:///{project.resolve()}/jobqueue.db"
    assert (settings.heartbeat_interval, settings.dead_threshold) == (5.0, 30.0)
    assert worker.prefetch is None  # automatic


def test_queues_keep_their_order_and_star_means_all() -> None:
    ((worker, _),) = build_settings(parse("--queues", "mail, default")).groups
    assert worker.queues == ["mail", "default"]
    ((worker, _),) = build_settings(parse("--queues", "*")).groups
    assert worker.queues is None


def test_worker_groups_and_apps_from_pyproject(project: Path) -> None:
    (project / "pyproject.toml").write_text(
        '[tool.jobqueue]\napps = ["app.jobs"]\n'
        '[[tool.jobqueue.workers]]\nqueues = ["mail"]\nprocesses = 2\nthreads = 3\n'
        '[[tool.jobqueue.workers]]\nqueues = "*"\n'
    )
    settings = build_settings(parse())
    (mail, mail_count), (rest, rest_count) = settings.groups
    assert (mail.queues, mail_count, mail.threads, mail.apps) == (["mail"], 2, 3, ["app.jobs"])
    assert (rest.queues, rest_count, rest.threads) == (None, 1, 5)
    # Command-line sizing replaces the declared groups.
    assert len(build_settings(parse("--processes", "3")).groups) == 1


def test_timing_from_environment_and_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOBQUEUE_HEARTBEAT_INTERVAL", "0.2")
    monkeypatch.setenv("JOBQUEUE_DEAD_THRESHOLD", "1.5")
    settings = build_settings(parse())
    assert (settings.heartbeat_interval, settings.dead_threshold) == (0.2, 1.5)
    with pytest.raises(ValueError, match="at least 5x"):
        build_settings(parse("--dead-threshold", "0.5"))


def test_bad_group_settings_are_clear_errors(project: Path) -> None:
    with pytest.raises(ConfigurationError, match="--processes"):
        build_settings(parse("--processes", "0"))
    (project / "pyproject.toml").write_text("[tool.jobqueue]\nworkers = 5\n")
    with pytest.raises(ConfigurationError, match="array of tables"):
        build_settings(parse())


def test_work_with_a_missing_app_module_fails_in_one_line(project: Path) -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "jobqueue", "work", "--app", "no.such.module"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "cannot import the job module 'no.such.module'" in done.stderr
    assert "Traceback" not in done.stderr


def test_zero_threads_and_an_empty_queue_list_are_refused_not_defaulted() -> None:
    with pytest.raises(ValueError, match="threads must be at least 1"):
        build_settings(parse("--threads", "0"))
    for empty in ("", " , "):  # an unset $QUEUES must not mean every queue
        with pytest.raises(ConfigurationError, match="no queue named"):
            build_settings(parse("--queues", empty))


def test_durations_need_a_unit_and_a_sane_size() -> None:
    from argparse import ArgumentTypeError
    from datetime import timedelta

    from jobqueue.cli.common import parse_duration

    assert parse_duration("30d") == timedelta(days=30)
    assert parse_duration("0") == timedelta(0)  # zero means the same in every unit
    with pytest.raises(ArgumentTypeError, match="no unit"):
        parse_duration("30")
    with pytest.raises(ArgumentTypeError, match="longer than 100 years"):
        parse_duration("99999999999w")


def test_prune_with_a_unitless_or_huge_duration_is_one_line_not_a_traceback(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from jobqueue.cli import main

    url = f"sqlite:///{project}/q.db"
    for bad in ("30", "99999999999w"):
        with pytest.raises(SystemExit) as exited:
            main(["prune", "--status", "failed", "--older-than", bad, "--database-url", url])
        assert exited.value.code == 2
        err = capsys.readouterr().err
        assert "--older-than" in err and "Traceback" not in err


def test_work_with_no_job_registered_refuses_to_start(project: Path) -> None:
    """Such a worker would claim every due job only to fail it as unknown, 25 times over."""
    import subprocess
    import sys

    command = [sys.executable, "-m", "jobqueue", "work", "--burst"]
    command += ["--database-url", f"sqlite:///{project}/q.db"]
    done = subprocess.run(command, cwd=project, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stderr
    assert "no job is registered" in done.stderr and "--app MODULE" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_listen_url_comes_from_the_flag_the_environment_or_pyproject(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every worker process of every group gets it; unset, they listen on the database URL."""
    ((worker, _),) = build_settings(parse()).groups
    assert worker.listen_url is None
    (project / "pyproject.toml").write_text(
        '[tool.jobqueue]\nlisten_url = "postgresql://db:5432/app"\n'
        '[[tool.jobqueue.workers]]\nqueues = ["mail"]\n[[tool.jobqueue.workers]]\nqueues = "*"\n'
    )
    groups = build_settings(parse()).groups
    assert [worker.listen_url for worker, _ in groups] == ["postgresql://db:5432/app"] * 2
    monkeypatch.setenv("JOBQUEUE_LISTEN_URL", "postgresql://env:5432/app")
    ((worker, _),) = build_settings(parse("--processes", "2")).groups
    assert worker.listen_url == "postgresql://env:5432/app"
    given = parse("--processes", "2", "--listen-url", "postgresql://flag:5432/app")
    ((worker, _),) = build_settings(given).groups
    assert worker.listen_url == "postgresql://flag:5432/app"
    (project / "pyproject.toml").write_text("[tool.jobqueue]\nlisten_url = 5\n")
    monkeypatch.delenv("JOBQUEUE_LISTEN_URL")
    with pytest.raises(ConfigurationError, match="listen_url"):
        build_settings(parse())
