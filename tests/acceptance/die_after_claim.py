"""A worker app for the "never started" probe: the first worker process that claims anything
dies (``os._exit``) the moment its claim has committed, before any job reaches a thread.

It wraps the dispatcher, which the claim loop calls only after the claim's transaction
committed. The file named by ``JQ_TEST_DIE_FLAG`` is created first, so only one process dies:
the supervisor's replacement runs the jobs normally.
"""

from __future__ import annotations

import os
from pathlib import Path

from jobqueue.runtime.dispatcher import Dispatcher
from jobqueue.store.claimed import ClaimedJob

_original = Dispatcher.dispatch


def _die_once(self: Dispatcher, job: ClaimedJob) -> None:
    flag = Path(os.environ["JQ_TEST_DIE_FLAG"])
    try:
        flag.touch(exist_ok=False)
    except FileExistsError:
        _original(self, job)
        return
    os._exit(9)


Dispatcher.dispatch = _die_once  # type: ignore[method-assign]
