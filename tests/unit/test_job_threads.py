"""The job threads end after their current task, however many times shutdown is called."""

from __future__ import annotations

import threading

from jobqueue.runtime.job_threads import JobThreads

from workers import wait_until


def test_a_second_shutdown_does_not_strand_a_busy_thread() -> None:
    release = threading.Event()
    started = threading.Event()
    ran: list[str] = []

    def busy() -> None:
        started.set()
        release.wait(30)

    threads = JobThreads(2, "test-job")
    threads.submit(busy)
    assert started.wait(30)
    threads.submit(ran.append, "queued behind the busy one")
    threads.shutdown()
    threads.shutdown()  # the worker calls it again on its way out
    release.set()
    wait_until(lambda: threads.alive() == 0, 30, "both job threads to end")
    assert ran == []  # shutdown dropped what had not started


def test_tasks_run_on_the_threads_until_shutdown() -> None:
    done = threading.Barrier(3, timeout=30)
    names: list[str] = []

    def record() -> None:
        names.append(threading.current_thread().name)
        done.wait()

    threads = JobThreads(2, "test-job")
    threads.submit(record)
    threads.submit(record)
    done.wait()  # both tasks ran at once, so on two different threads
    assert sorted(names) == ["test-job_0", "test-job_1"]
    threads.shutdown()
    wait_until(lambda: threads.alive() == 0, 30, "both job threads to end")
