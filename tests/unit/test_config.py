from pathlib import Path

import pytest

from jobqueue import ConfigurationError, JobQueue
from jobqueue.config import resolve_database_url
from jobqueue.db import create_engine, mask_url, normalize_url


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("JOBQUEUE_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_default_is_jobqueue_db_in_the_cwd_made_absolute(project: Path) -> None:
    assert resolve_database_url() == f"sqlite:///{project.resolve()}/jobqueue.db"


def test_pyproject_setting_is_used_and_relative_sqlite_paths_anchor_to_it(project: Path) -> None:
    (project / "pyproject.toml").write_text(
        '[tool.jobqueue]\ndatabase_url = "sqlite:///data/q.db"\n'
    )
    sub = project / "src" / "app"
    sub.mkdir(parents=True)
    assert resolve_database_url(start=sub) == f"sqlite:///{project.resolve()}/data/q.db"


def test_environment_beats_pyproject_and_explicit_beats_both(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (project / "pyproject.toml").write_text('[tool.jobqueue]\ndatabase_url = "sqlite:///p.db"\n')
    monkeypatch.setenv("JOBQUEUE_DATABASE_URL", "postgresql://env/db")
    assert resolve_database_url() == "postgresql://env/db"
    assert resolve_database_url("mysql://explicit/db") == "mysql://explicit/db"


@pytest.mark.parametrize("source", ["explicit", "environment"])
def test_relative_sqlite_paths_given_directly_are_made_absolute_against_the_cwd(
    project: Path, monkeypatch: pytest.MonkeyPatch, source: str
) -> None:
    (project / "pyproject.toml").write_text('[tool.jobqueue]\ndatabase_url = "sqlite:///p.db"\n')
    sub = project / "elsewhere"
    sub.mkdir()
    monkeypatch.chdir(sub)
    explicit = None
    if source == "explicit":
        explicit = "sqlite:///jobqueue.db"
    else:
        monkeypatch.setenv("JOBQUEUE_DATABASE_URL", "sqlite+pysqlite:///data/q.db")
    expected = (
        f"sqlite:///{sub.resolve()}/jobqueue.db"
        if source == "explicit"
        else f"sqlite+pysqlite:///{sub.resolve()}/data/q.db"
    )
    assert resolve_database_url(explicit, start=project) == expected
    # Absolute paths, in-memory databases and URI filenames are left as given.
    for url in (
        f"sqlite:///{project}/a.db",
        "sqlite:///:memory:",
        "sqlite://",
        "sqlite:///file:rel.db?mode=ro&uri=true",
    ):
        assert resolve_database_url(url) == url


def test_invalid_pyproject_is_a_clear_error(project: Path) -> None:
    (project / "pyproject.toml").write_text("[tool.jobqueue\n")
    with pytest.raises(ConfigurationError, match="not valid TOML"):
        resolve_database_url()


def test_password_is_masked() -> None:
    assert mask_url("postgresql://bob:s3cret@db/x") == "postgresql://bob:***@db/x"


def test_a_password_in_the_query_is_masked_too() -> None:
    masked = mask_url("postgresql://bob@db/x?password=s3cret&sslmode=require&sslpassword=k3y")
    assert "s3cret" not in masked and "k3y" not in masked
    assert masked == "postgresql://bob@db/x?password=***&sslmode=require&sslpassword=***"


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("post gres://bob:s3cret@db/x", "post gres://bob:***@db/x"),
        ("postgresql://bob:s3cret@db:port/x", "postgresql://bob:***@db:port/x"),
        ("post gres://bob:p@ss:w/rd@db/x", "post gres://bob:***@db/x"),
        ("mysql//bob:s3cret@db/x", "mysql//bob:***@db/x"),
        ("nonsense", "nonsense"),
        ("no password://bob@db/x", "no password://bob@db/x"),
    ],
)
def test_password_is_masked_in_unparsable_urls_too(url: str, masked: str) -> None:
    assert mask_url(url) == masked


def test_driver_is_chosen_when_the_url_names_none() -> None:
    assert normalize_url("postgresql://h/db").drivername == "postgresql+psycopg"
    assert normalize_url("mysql://h/db").drivername == "mysql+pymysql"
    assert normalize_url("mariadb://h/db").drivername == "mariadb+pymysql"


def test_postgres_urls_as_hosting_services_hand_them_out_are_accepted() -> None:
    assert normalize_url("postgres://u:p@h:5432/db").drivername == "postgresql+psycopg"
    assert normalize_url("postgres+psycopg://u@h/db").drivername == "postgresql+psycopg"


@pytest.mark.parametrize(
    "url",
    [
        "oracle://u:pw@h/db",
        "nonsense",
        "sqlite://",
        "sqlite:///:memory:",
        "post gres://u:pw@h/db",
        "postgresql://u:pw@h:port/db",
    ],
)
def test_unusable_urls_are_refused_naming_them_without_password(url: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        create_engine(url)
    assert "pw" not in str(raised.value)
    if "@" in url:
        assert "u:***@h" in str(raised.value)


def test_nothing_connects_until_first_use(tmp_path: Path) -> None:
    queue = JobQueue(f"sqlite:///{tmp_path}/never.db")
    assert queue._engine is None
    assert not (tmp_path / "never.db").exists()
