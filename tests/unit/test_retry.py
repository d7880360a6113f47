from datetime import UTC, datetime, timedelta

import pytest

from jobqueue.retry import MAX_BACKOFF_SECONDS, RetryJob, backoff_delay


def test_default_backoff_is_exponential_with_bounded_jitter() -> None:
    for n in range(1, 12):
        low = 2 ** (n - 1)
        for _ in range(50):
            assert low <= backoff_delay(n) < low * 1.25
    assert backoff_delay(1) >= 1.0  # first retry after at least a second


def test_backoff_is_capped_and_configurable() -> None:
    assert backoff_delay(200) < MAX_BACKOFF_SECONDS * 1.25
    assert 10 <= backoff_delay(1, 10) < 12.5
    assert 40 <= backoff_delay(3, 10) < 50
    assert backoff_delay(4, lambda n: n * 3) == 12


def test_retry_job_times() -> None:
    now = datetime(2027, 1, 1, tzinfo=UTC)
    assert RetryJob(delay=5).retry_at(now) == now + timedelta(seconds=5)
    assert RetryJob(delay=timedelta(minutes=1)).retry_at(now) == now + timedelta(minutes=1)
    assert RetryJob(at=now + timedelta(days=1)).retry_at(now) == now + timedelta(days=1)
    assert RetryJob().retry_at(now) is None
    with pytest.raises(ValueError):
        RetryJob(at=datetime(2027, 1, 1))
    with pytest.raises(ValueError):
        RetryJob(delay=1, at=now)
