"""Secrets in the settings never show in repr(), str() or a JSON dump, yet every reader still gets the value."""

from __future__ import annotations

import pytest

from casemgr.config import get_settings
from casemgr.runtime import rebuild

pytestmark = pytest.mark.no_db  # runs no SQL: the PostgreSQL run leaves it out (scripts/test.sh)

SECRET_KEY = "sk-session-signing-7f3a9c"
OPENAI_KEY = "sk-openai-key-b81d02"
DB_PASSWORD = "pg-password-55e1"


@pytest.fixture
def secret_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CASEMGR_SECRET_KEY", SECRET_KEY)
    monkeypatch.setenv("CASEMGR_OPENAI_API_KEY", OPENAI_KEY)
    monkeypatch.setenv("CASEMGR_OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("CASEMGR_DATABASE_URL", f"postgresql://casemgr:{DB_PASSWORD}@127.0.0.1:5432/casemgr")
    rebuild()
    yield
    rebuild()


def test_repr_and_dumps_do_not_print_secrets(secret_env: None) -> None:
    settings = get_settings()
    for shown in (repr(settings), str(settings), settings.model_dump_json(), repr(settings.model_dump())):
        assert SECRET_KEY not in shown
        assert OPENAI_KEY not in shown
        assert DB_PASSWORD not in shown
    assert "**********" in repr(settings)  # the fields are there, masked


def test_readers_get_the_secret_values(secret_env: None) -> None:
    settings = get_settings()
    assert settings.secret_key_value() == SECRET_KEY
    assert settings.effective_database_url == f"postgresql+psycopg://casemgr:{DB_PASSWORD}@127.0.0.1:5432/casemgr"

    from casemgr.ai.providers.openai_provider import OpenAIProvider

    provider = OpenAIProvider.from_settings(settings)
    assert provider.client.api_key == OPENAI_KEY


def test_session_signing_uses_the_configured_key(secret_env: None) -> None:
    from itsdangerous import Signer

    from casemgr.web import sessions

    signed = Signer(SECRET_KEY, salt="probe").sign(b"x")
    assert sessions._signer("probe").unsign(signed) == b"x"  # a wrong key would raise BadSignature


def test_every_secret_looking_setting_is_a_secretstr() -> None:
    """A new password, token or key setting cannot be added as a plain str (it would show in repr)."""
    import re
    import typing

    from pydantic import SecretStr

    from casemgr.config import Settings

    secret_name = re.compile(r"password|passwd|secret(?!_key_file$)|api_key$|_token$|^database_url$")
    for name, info in Settings.model_fields.items():
        if secret_name.search(name):
            types = typing.get_args(info.annotation) or (info.annotation,)
            assert SecretStr in types, f"setting {name} looks secret but is {info.annotation}"
