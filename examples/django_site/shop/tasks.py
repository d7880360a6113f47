"""The site's tasks: plain Django ``@task`` functions, run by ``manage.py jobrunner work``."""

import asyncio
import os
import signal
import time
from pathlib import Path

from django.db.models import F
from django.tasks import task
from django.tasks.signals import task_finished, task_started

from shop.models import Order


@task
def confirm_order(reference: str) -> str:
    Order.objects.filter(reference=reference).update(
        confirmed=True, confirmations=F("confirmations") + 1
    )
    return reference


@task(priority=10)
def add(a: int, b: int) -> int:
    return a + b


@task(queue_name="mail")
async def async_double(n: int) -> int:
    await asyncio.sleep(0)
    return n * 2


@task(takes_context=True)
def which_attempt(context, fail_first: bool) -> dict:  # type: ignore[no-untyped-def]
    if fail_first and context.attempt == 1:
        raise RuntimeError("the first attempt fails")
    return {"attempt": context.attempt, "id": context.task_result.id}


@task
def always_fails() -> None:
    raise LookupError("nothing here")


@task
def die_once(marker: str) -> str:
    """Kills its worker process the first time (the marker file does not exist yet)."""
    path = Path(marker)
    if not path.exists():
        path.write_text("died")
        os.kill(os.getpid(), signal.SIGKILL)
    return "survived"


@task
def hold_first_time(marker: str) -> str:
    """The first time (no marker yet), writes the marker and holds its worker until the test
    kills it from outside; a second attempt returns at once."""
    path = Path(marker)
    if not path.exists():
        path.write_text(str(os.getpid()))
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            time.sleep(0.1)
        return "was never killed"
    return "survived"


def _broken_started(sender, task_result, **kwargs):  # type: ignore[no-untyped-def]
    if task_result.task.name == "add":
        raise RuntimeError("a task_started receiver that raises")


def _broken_finished(sender, task_result, **kwargs):  # type: ignore[no-untyped-def]
    if task_result.task.name == "add":
        raise RuntimeError("a task_finished receiver that raises")


task_started.connect(_broken_started)
task_finished.connect(_broken_finished)
