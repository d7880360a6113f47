"""Stand-in owners: registered worker processes whose pid is a real child process, so that
killing the child is a worker's death as the supervisor's maintenance sees it (its pid gone on
this host), and its claims, fenced writes and heartbeats are production's own calls."""

from __future__ import annotations

import subprocess
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from ulid import ULID

from jobqueue.database import Database
from jobqueue.runtime.host import hostname
from jobqueue.store import claiming, processes
from jobqueue.store.claimed import ClaimedJob


@dataclass
class Owner:
    process_id: str
    child: subprocess.Popen[bytes]

    def kill(self) -> None:
        if self.child.poll() is None:
            self.child.kill()
        self.child.wait()


class Owners:
    """Every stand-in a binding started, and every claim each made, by fencing token."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.owners: dict[str, Owner] = {}
        self.claims: dict[uuid.UUID, ClaimedJob] = {}

    def start(self) -> Owner:
        owner = Owner(str(ULID()), subprocess.Popen(["sleep", "3600"]))
        self.owners[owner.process_id] = owner
        with self.database.transaction() as connection:
            processes.register(
                connection,
                process_id=owner.process_id,
                kind="worker",
                hostname=hostname(),
                pid=owner.child.pid,
            )
        return owner

    def claim(self, queues: list[str] | None, limit: int) -> list[ClaimedJob]:
        """What a worker's claim does: take up to ``limit`` due jobs, as a fresh owner."""
        owner = self.start()
        with self.database.transaction() as connection:
            taken = claiming.claim_due(
                connection,
                process_id=owner.process_id,
                queues=queues,
                limit=limit,
                now=datetime.now(UTC),
            ).jobs
        for job in taken:
            self.claims[token(job)] = job
        return taken

    def kill_owner_of(self, process_id: str | None) -> None:
        owner = self.owners.get(process_id or "")
        if owner is not None:
            owner.kill()

    def close(self) -> None:
        for owner in self.owners.values():
            owner.kill()


def token(job: ClaimedJob) -> uuid.UUID:
    """The fencing token of an attempt: its process and its claim count, as a UUID."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"jobqueue:{job.claimed_by}:{job.id}:{job.attempts}")
