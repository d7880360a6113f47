import asyncio
from datetime import timedelta

import pytest

from jobqueue import Job, JobCall, RegistryError, UnknownJobError, by_name, job, registry
from jobqueue.registry import JobDefinition


def test_job_registers_under_module_and_qualname() -> None:
    @job(name="tests.plain")
    def plain(x: int) -> int:
        return x * 2

    assert registry.get("tests.plain").target is plain.__wrapped__
    assert plain(21) == 42  # still callable directly


def test_default_name_is_module_dot_qualname() -> None:
    def module_level() -> None: ...

    module_level.__qualname__ = "module_level"
    registered = job(module_level)
    assert registered.name == f"{__name__}.module_level"


def test_function_defined_in_a_function_needs_a_name() -> None:
    with pytest.raises(RegistryError, match="inside a function"):

        @job
        def nested() -> None: ...


def test_main_module_needs_a_name() -> None:
    def in_main() -> None: ...

    in_main.__module__ = "__main__"
    in_main.__qualname__ = "in_main"
    with pytest.raises(RegistryError, match="__main__"):
        job(in_main)


def test_two_different_callables_cannot_share_a_name() -> None:
    @job(name="tests.shared")
    def first() -> None: ...

    with pytest.raises(RegistryError, match="already registered"):

        @job(name="tests.shared")
        def second() -> None: ...


def test_reregistering_the_same_definition_replaces_it() -> None:
    def original() -> str:
        return "old"

    def reloaded() -> str:
        return "new"

    reloaded.__qualname__ = original.__qualname__
    job(name="tests.reload")(original)
    job(name="tests.reload")(reloaded)
    assert registry.get("tests.reload").target() == "new"


def test_options_are_validated_and_kept() -> None:
    @job(name="tests.opts", queue="mail", priority=-5, max_attempts=3, timeout=timedelta(seconds=2))
    def opts() -> None: ...

    assert (opts.options.queue, opts.options.priority, opts.options.max_attempts) == ("mail", -5, 3)
    assert opts.options.timeout == 2.0
    for bad in (
        {"queue": ""},
        {"queue": "*"},
        {"priority": 1.5},
        {"max_attempts": 0},
        {"timeout": -1},
        {"backoff": "fast"},
    ):
        with pytest.raises(ValueError):
            job(name="tests.bad", **bad)(lambda: None)  # type: ignore[arg-type]


def test_async_functions_are_recognised() -> None:
    @job(name="tests.async")
    async def coro(x: int) -> int:
        return x

    assert registry.get("tests.async").is_async
    assert asyncio.run(coro(3)) == 3


def test_class_jobs_register_and_run_on_a_fresh_instance() -> None:
    class Resize(Job, name="tests.resize", queue="images", timeout=5):
        def perform(self, path: str) -> str:
            return f"resized {path}"

    definition = registry.get("tests.resize")
    assert definition.job_class is Resize
    assert definition.options.queue == "images"
    assert definition.callable_for_run()("a.png") == "resized a.png"
    call = Resize.call("a.png")
    assert (call.name, call.queue, list(call.args)) == ("tests.resize", "images", ["a.png"])


def test_class_job_subclass_inherits_options_not_name() -> None:
    class Base(Job, abstract=True, queue="reports", max_attempts=2):
        def perform(self) -> None: ...

    class Daily(Base, name="tests.daily"):
        pass

    assert Daily.definition.options.queue == "reports"
    assert Daily.definition.options.max_attempts == 2
    with pytest.raises(RegistryError, match="abstract"):
        Base.call()


def test_class_job_without_perform_is_refused() -> None:
    with pytest.raises(RegistryError, match="perform"):

        class Empty(Job, name="tests.empty"):
            pass


def test_unknown_name_raises_a_clear_error() -> None:
    with pytest.raises(UnknownJobError, match="no job is registered under the name 'nope'"):
        registry.get("nope")


def test_by_name_uses_registered_options_or_defaults() -> None:
    @job(name="tests.billing", queue="billing", priority=3)
    def charge(amount: int) -> None: ...

    assert by_name("tests.billing").call(5).queue == "billing"
    call = by_name("elsewhere.job", queue="far").call(1, x=2)
    assert (call.name, call.queue, call.priority, dict(call.kwargs)) == (
        "elsewhere.job",
        "far",
        0,
        {"x": 2},
    )


def test_using_overrides_options_without_changing_the_job() -> None:
    @job(name="tests.using", queue="a")
    def f() -> None: ...

    assert f.using(queue="b", priority=7).call().queue == "b"
    assert f.call().queue == "a"


def test_job_call_validates_its_fields() -> None:
    with pytest.raises(ValueError):
        JobCall("x", queue="")
    with pytest.raises(TypeError):
        JobCall("x", args="abc")  # type: ignore[arg-type]
    assert isinstance(JobDefinition("n", print).options.max_attempts, int)
