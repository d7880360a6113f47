"""A recurring job for the scheduler acceptance test (kept apart from ledger_jobs, so other
tests' supervisors do not run it)."""

from jobqueue import job


@job(name="cron.every_second", cron="* * * * * *")
def every_second() -> None:
    pass
