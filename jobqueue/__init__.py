"""jobqueue: a persistent background job runner where the database is the queue.

Define jobs with :func:`job` or :class:`Job`, enqueue them, and run ``jobrunner work``.
"""

from jobqueue.batches import Batch, batch, current_batch, dependency_results
from jobqueue.calls import EnqueuedJob, JobCall
from jobqueue.context import (
    JobTimeoutError,
    cancel_requested,
    current_job,
    on_failure,
    on_retry,
)
from jobqueue.db import configure_sqlite, create_engine
from jobqueue.enqueuer import Enqueuer, by_name
from jobqueue.errors import (
    AttemptSupersededError,
    BatchFinishedError,
    ConfigurationError,
    DatabaseUnavailableError,
    JobArgumentsError,
    JobCancelledError,
    JobExpiredError,
    JobFailedError,
    JobNotFoundError,
    JobQueueError,
    NaiveDatetimeError,
    PayloadTooLargeError,
    QueueFullError,
    RegistryError,
    SchemaError,
    SerializationError,
    StepNotFoundError,
    UnknownJobError,
)
from jobqueue.jobs import Job, JobFunction, job
from jobqueue.options import JobOptions
from jobqueue.queue import JobQueue, configure, get_default_queue, set_default_queue
from jobqueue.registry import JobDefinition, registry
from jobqueue.retry import FailJob, JobCancelled, RetryJob
from jobqueue.steps import durable_sleep, iterate, step
from jobqueue.store.batches import BatchRecord
from jobqueue.store.claimed import ClaimedJob
from jobqueue.store.due import DueJob
from jobqueue.store.jobs import JobRecord


def enqueue_many(calls: "list[JobCall]") -> list[EnqueuedJob]:
    """Write ``calls`` to the default queue in one transaction."""
    return get_default_queue().enqueue_many(calls)


__all__ = [
    "AttemptSupersededError",
    "Batch",
    "BatchFinishedError",
    "BatchRecord",
    "ClaimedJob",
    "ConfigurationError",
    "DatabaseUnavailableError",
    "DueJob",
    "EnqueuedJob",
    "Enqueuer",
    "FailJob",
    "Job",
    "JobArgumentsError",
    "JobCall",
    "JobCancelled",
    "JobCancelledError",
    "JobDefinition",
    "JobExpiredError",
    "JobFailedError",
    "JobFunction",
    "JobNotFoundError",
    "JobOptions",
    "JobQueue",
    "JobQueueError",
    "JobRecord",
    "JobTimeoutError",
    "NaiveDatetimeError",
    "PayloadTooLargeError",
    "QueueFullError",
    "RegistryError",
    "RetryJob",
    "SchemaError",
    "SerializationError",
    "StepNotFoundError",
    "UnknownJobError",
    "batch",
    "by_name",
    "cancel_requested",
    "configure",
    "configure_sqlite",
    "create_engine",
    "current_batch",
    "current_job",
    "dependency_results",
    "durable_sleep",
    "enqueue_many",
    "get_default_queue",
    "iterate",
    "job",
    "on_failure",
    "on_retry",
    "registry",
    "set_default_queue",
    "step",
]
