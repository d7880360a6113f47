"""Every error jobqueue raises on purpose derives from :class:`JobQueueError`.

Errors about bad arguments also derive from the builtin a caller would expect (``TypeError`` for a
value JSON cannot hold, ``ValueError`` for a naive datetime or an oversized payload), so code that
already guards against those keeps working.
"""

from __future__ import annotations


class JobQueueError(Exception):
    """Base class of every jobqueue error."""


class ConfigurationError(JobQueueError):
    """The database URL or another setting cannot be used (unknown scheme, missing driver, ...)."""


class QueueFullError(JobQueueError):
    """An enqueue would take a bounded queue (``max_pending``) past its bound: nothing was
    written. Enqueue later, or with ``using(block=timedelta(...))`` to wait for room."""

    def __init__(self, message: str, *, queue: str, max_pending: int, waiting: int) -> None:
        super().__init__(message)
        self.queue = queue
        self.max_pending = max_pending
        self.waiting = waiting


class DatabaseUnavailableError(JobQueueError):
    """The database could not be reached; the message names the URL with its password masked."""


class SchemaError(JobQueueError):
    """The jobqueue tables are missing or older than this version of jobqueue expects."""


class SerializationError(JobQueueError, TypeError):
    """A job argument is not plain JSON (a set, bytes, an object, NaN, a non-string dict key)."""


class PayloadTooLargeError(JobQueueError, ValueError):
    """The encoded arguments are larger than the configured limit."""


class NaiveDatetimeError(JobQueueError, ValueError):
    """A datetime without a timezone was given where an instant in time is required."""


class RegistryError(JobQueueError):
    """Two different callables claim one job name, or a job definition is malformed."""


class UnknownJobError(JobQueueError):
    """No job is registered under the name a row carries (a newer worker may know it)."""


class JobArgumentsError(JobQueueError, TypeError):
    """The arguments do not fit the job's signature: refused at enqueue where the job's code is
    imported, and a job that reaches a worker with them fails at once (a retry cannot help)."""


class JobNotFoundError(JobQueueError, LookupError):
    """No such job: it was never committed (a rolled-back transaction), or it was pruned."""


class JobFailedError(JobQueueError):
    """The job ended ``failed``; ``error`` is its last attempt's error record (type, message,
    traceback), or None if it recorded none."""

    def __init__(self, message: str, *, job_id: str, error: object | None) -> None:
        super().__init__(message)
        self.job_id = job_id
        self.error = error


class JobCancelledError(JobQueueError):
    """The job ended ``cancelled`` (discarded by its own code, or by an operator)."""

    def __init__(self, message: str, *, job_id: str) -> None:
        super().__init__(message)
        self.job_id = job_id


class JobExpiredError(JobQueueError):
    """The job ended ``expired``: it had not started by its ``expires_at`` (or its retry
    would have started after it), so it was not run late."""

    def __init__(self, message: str, *, job_id: str) -> None:
        super().__init__(message)
        self.job_id = job_id


class AttemptSupersededError(JobQueueError):
    """A durable step could not be recorded because this attempt no longer holds its job (it
    was rescued and perhaps runs elsewhere now); the stale execution stops there."""


class StepNotFoundError(JobQueueError):
    """A retry ``from_step`` names a step the job never recorded (nothing was changed)."""


class BatchFinishedError(JobQueueError):
    """A job was added to a batch whose members have all finished (its callbacks are
    enqueued), or to a batch that does not exist: nothing was written."""


class BatchNotFoundError(JobQueueError):
    """No batch has this id (it was never written, or was pruned)."""
