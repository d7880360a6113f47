"""The task both backends run: it does nothing, so a run measures the backend and its worker."""

from django.tasks import task


@task  # type: ignore[untyped-decorator]  # Django ships no types
def noop() -> None:
    return None
