"""A worker app that dies (``os._exit``) at the commit of the transaction recording one step:
``JQ_TEST_DIE_STEP`` names the step, ``JQ_TEST_DIE_MOMENT`` says when.

- ``before-commit``: once the step's record is written (and, for a transactional step, its
  function's writes), before the COMMIT is sent: the whole transaction must roll back.
- ``after-commit``: right after the driver's COMMIT returned, on that connection only, before
  ``step`` returns to the job: the step and its writes must stand, never run again.

It wraps :func:`jobqueue.store.steps.record_step`, the last write of that transaction, and for
the second moment the dialect's ``do_commit``, the one place every driver's COMMIT passes. The
file named by ``JQ_TEST_DIE_FLAG`` is created first, so only one process dies: the supervisor's
replacement finishes the job.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy import Connection

from jobqueue.store import steps

_record_step = steps.record_step


def _first_time() -> bool:
    try:
        Path(os.environ["JQ_TEST_DIE_FLAG"]).touch(exist_ok=False)
    except FileExistsError:
        return False
    return True


def _record_then_die(connection: Connection, job: Any, name: str, **kwargs: Any) -> None:
    _record_step(connection, job, name, **kwargs)
    if name != os.environ["JQ_TEST_DIE_STEP"] or not _first_time():
        return
    if os.environ["JQ_TEST_DIE_MOMENT"] == "before-commit":
        os._exit(9)
    _die_after_commit(connection)


def _die_after_commit(connection: Connection) -> None:
    dialect, pooled = connection.dialect, connection.connection
    commit = dialect.do_commit

    def do_commit(dbapi_connection: Any) -> None:
        commit(dbapi_connection)
        if dbapi_connection is pooled:
            os._exit(9)

    dialect.do_commit = do_commit  # type: ignore[method-assign]


steps.record_step = _record_then_die  # type: ignore[assignment]
