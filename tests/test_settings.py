"""Settings come from the environment and refuse nonsense loudly."""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from webmail import env, keys

REPO = Path(__file__).resolve().parent.parent
GOOD_SECRET = secrets.token_urlsafe(50)
GOOD_FERNET = base64.urlsafe_b64encode(b"k" * 32).decode()


def run_settings(tmp_path: Path, **environ: str) -> subprocess.CompletedProcess[str]:
    """Import the settings in a fresh interpreter with exactly ``environ`` (plus PATH)."""
    code = (
        "import json, django; from django.conf import settings; django.setup();"
        "print(json.dumps({'db': settings.DATABASES['default']['ENGINE'],"
        " 'broker': settings.CELERY_BROKER_URL, 'debug': settings.DEBUG,"
        " 'cache': settings.CACHES['default']['BACKEND']}))"
    )
    base = {"PATH": os.environ["PATH"], "DATA_DIR": str(tmp_path / "data")}
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env={**base, "DJANGO_SETTINGS_MODULE": "webmail.settings", **environ},
        capture_output=True,
        text=True,
        check=False,
    )


def production_env(**overrides: str) -> dict[str, str]:
    return {
        "COURRIER_MODE": "production",
        "SECRET_KEY": GOOD_SECRET,
        "ENCRYPTION_KEYS": GOOD_FERNET,
        "ALLOWED_HOSTS": "mail.example.org",
        **overrides,
    }


def test_with_no_environment_it_runs_on_sqlite_and_the_filesystem_broker(tmp_path: Path) -> None:
    result = run_settings(tmp_path)
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout)
    assert loaded["db"] == "django.db.backends.sqlite3"
    assert loaded["broker"] == "filesystem://"
    assert loaded["cache"].endswith("FileBasedCache")
    assert loaded["debug"] is True
    # Development keys were generated into the data directory, readable by the owner only.
    for name in ("secret_key", "encryption_key"):
        assert (tmp_path / "data" / name).stat().st_mode & 0o077 == 0


def test_database_and_redis_urls_select_postgresql_and_redis(tmp_path: Path) -> None:
    result = run_settings(
        tmp_path,
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/courrier",
        REDIS_URL="redis://127.0.0.1:6379/0",
    )
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout)
    assert loaded["db"] == "django.db.backends.postgresql"
    assert loaded["broker"] == "redis://127.0.0.1:6379/0"
    assert loaded["cache"].endswith("RedisCache")


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"DEBUG": "maybe"}, "DEBUG='maybe' is not a boolean"),
        ({"COURRIER_MODE": "staging"}, "COURRIER_MODE='staging' must be one of"),
        ({"DATABASE_URL": "mysql://db/courrier"}, "DATABASE_URL must start with one of"),
        ({"REDIS_URL": "http://127.0.0.1:6379"}, "REDIS_URL must start with one of"),
        ({"SECRET_KEY": "short"}, "SECRET_KEY must be at least 50 characters"),
        ({"SECRET_KEY": "ab" * 30}, "SECRET_KEY must be at least 50 characters"),
        ({"ENCRYPTION_KEYS": "not-a-key"}, "is not a Fernet key"),
        ({"EMAIL_HOST": "smtp.example.org", "EMAIL_PORT": "five"}, "EMAIL_PORT='five'"),
        (production_env(SECRET_KEY=""), "SECRET_KEY is set but empty"),
        (production_env(DEBUG="true"), "DEBUG must be off"),
        (production_env(ALLOWED_HOSTS=""), "ALLOWED_HOSTS must list"),
        ({"COURRIER_MODE": "production"}, "needs SECRET_KEY and ENCRYPTION_KEYS"),
    ],
)
def test_nonsense_stops_the_start_with_a_clear_message(
    tmp_path: Path, environ: dict[str, str], message: str
) -> None:
    result = run_settings(tmp_path, **environ)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert message in result.stderr


def test_production_mode_passes_check_deploy_without_warnings(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPO,
        env={"PATH": os.environ["PATH"], "DATA_DIR": str(tmp_path), **production_env()},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues (0 silenced)" in result.stdout


def test_secrets_can_come_from_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text("from-a-file\n")
    monkeypatch.setenv("SOME_SECRET_FILE", str(secret_file))
    assert env.env_secret("SOME_SECRET") == "from-a-file"

    monkeypatch.setenv("SOME_SECRET", "direct")
    with pytest.raises(ImproperlyConfigured, match="not both"):
        env.env_secret("SOME_SECRET")

    monkeypatch.delenv("SOME_SECRET")
    monkeypatch.setenv("SOME_SECRET_FILE", str(tmp_path / "missing"))
    with pytest.raises(ImproperlyConfigured, match="cannot be read"):
        env.env_secret("SOME_SECRET")


def test_typed_helpers_read_good_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("A_BOOL", "Yes")
    monkeypatch.setenv("AN_INT", " 42 ")
    monkeypatch.setenv("A_LIST", "a.example, ,b.example,")
    assert env.env_bool("A_BOOL", default=False) is True
    assert env.env_int("AN_INT", 0) == 42
    assert env.env_list("A_LIST") == ["a.example", "b.example"]
    with pytest.raises(ImproperlyConfigured, match="below the minimum"):
        env.env_int("AN_INT", 0, minimum=100)


def test_a_development_key_is_made_once_and_kept(tmp_path: Path) -> None:
    first = keys.development_key(tmp_path / "k", kind="fernet")
    assert keys.development_key(tmp_path / "k", kind="fernet") == first
    assert keys.parse_encryption_keys(first, secret_key=GOOD_SECRET) == [first]


def test_encryption_keys_must_be_fernet_keys_distinct_from_the_secret_key() -> None:
    other = base64.urlsafe_b64encode(b"o" * 32).decode()
    assert keys.parse_encryption_keys(f"{GOOD_FERNET}, {other}", secret_key=GOOD_SECRET) == [
        GOOD_FERNET,
        other,
    ]
    with pytest.raises(ImproperlyConfigured, match="same key twice"):
        keys.parse_encryption_keys(f"{GOOD_FERNET},{GOOD_FERNET}", secret_key=GOOD_SECRET)
    with pytest.raises(ImproperlyConfigured, match="must differ from SECRET_KEY"):
        keys.parse_encryption_keys(GOOD_FERNET, secret_key=GOOD_FERNET)
    with pytest.raises(ImproperlyConfigured, match="key #2 is not a Fernet key"):
        keys.parse_encryption_keys(f"{GOOD_FERNET},c2hvcnQ=", secret_key=GOOD_SECRET)


def test_env_example_lists_every_variable_the_settings_read() -> None:
    source = (REPO / "webmail" / "settings.py").read_text()
    read = set(re.findall(r'env_(?:str|bool|int|list|choice|secret|url)\(\s*"([A-Z_]+)"', source))
    listed = set(
        re.findall(r"^([A-Z_]+)=", (REPO / ".env.example").read_text(), flags=re.MULTILINE)
    )
    assert len(read) > 20
    assert read - listed == set()


def test_a_copied_env_example_with_its_secrets_filled_in_loads(tmp_path: Path) -> None:
    """Blank lines of .env.example mean "use the default", not "empty string"."""
    listed = dict(
        line.split("=", 1)
        for line in (REPO / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    )
    listed.update(SECRET_KEY=GOOD_SECRET, ENCRYPTION_KEYS=GOOD_FERNET)
    listed.pop("DATA_DIR")
    result = run_settings(tmp_path, **listed)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["db"] == "django.db.backends.sqlite3"
