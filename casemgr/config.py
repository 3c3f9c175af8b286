"""One settings object for the whole service, read from CASEMGR_* environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_POLICIES_DIR = PACKAGE_DIR.parent / "policies"


def _default_policies_dir() -> Path:
    # In a source checkout the editable policies/ folder wins; an installed wheel uses its bundled copy.
    if REPO_POLICIES_DIR.is_dir():
        return REPO_POLICIES_DIR
    return PACKAGE_DIR / "bundled_policies"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CASEMGR_", env_file=None, extra="ignore")

    data_dir: Path = Path("./data")
    # A URL may carry a password (postgresql://user:pw@host/db): kept secret so repr(settings) never shows it.
    database_url: SecretStr | None = None
    policies_dir: Path = Field(default_factory=_default_policies_dir)

    # Secrets come from the environment or a file, never from code; see secret_key_value().
    secret_key: SecretStr | None = None
    secret_key_file: Path | None = None

    db_pool_size: int = 10
    sqlite_busy_timeout_ms: int = 15000

    max_field_chars: int = 20000
    max_subject_chars: int = 500

    # AI
    ai_provider: str = "local"
    # AI enrichment of a new case runs in the worker right after the intake commit; true runs it inside the request
    # (local provider only). One default for tests and served apps (issue 16/23).
    ai_inline: bool = False
    openai_base_url: str | None = None
    openai_model: str = "gpt-4o-mini"
    openai_api_key: SecretStr | None = None
    ai_timeout_s: float = 10.0
    ai_redact_pii: bool = True  # redact emails, phones, IBANs, cards before an external provider sees text
    ai_max_retries: int = 2
    ai_max_tokens: int = 512  # sent with every provider request (contracts get 4x); a cut answer is an error
    ai_latency_budget_s: float = 30.0  # all attempts of one provider call together, retries included
    ai_fallback_local: bool = True  # answer from the offline models when the openai provider fails
    # Four eyes (issue 21): off = a second governance lead approves every policy/rules change request.
    single_person_publish: bool = False
    # Governed learning (issue 21, casemgr.learning): candidate category models from reviewed decisions.
    learning_holdout_share: float = Field(default=0.3, gt=0.0, lt=1.0)  # cases held back for the comparison
    learning_min_holdout: int = Field(default=20, ge=1)  # fewer held-back examples: no candidate is offered
    learning_min_gain: float = Field(default=0.0, ge=0.0)  # macro-F1 the candidate must add to be offered
    learning_recipe: str = "ensemble"  # ensemble (the shipped model's recipe) | linear (one TF-IDF LR, faster)
    learning_folds: int = Field(default=5, ge=0)  # CV folds for the candidate's calibration (0: none)
    learning_train_every_s: float = Field(default=7 * 24 * 3600.0, gt=0)  # the worker's schedule: weekly

    # Intake / mail
    accepted_domains: list[str] = Field(default_factory=lambda: ["example.com", "casemgr.local", "localhost"])
    complaint_addresses: list[str] = Field(default_factory=lambda: ["complaints@", "support@", "help@"])
    contract_addresses: list[str] = Field(default_factory=lambda: ["contracts@", "legal@"])
    max_message_bytes: int = 25 * 1024 * 1024
    smtp_relay_host: str | None = None
    smtp_relay_port: int = 25
    mail_from: str = "support@casemgr.local"
    intake_ack: bool = True  # acknowledge new email/form cases to the sender
    form_rate_per_minute: int = 10  # public form submissions per client IP
    # New API cases are stored in batches by one writer thread per process (casemgr.groupcommit; issue 10)
    intake_group_commit: bool = True

    # Worker: run one job-worker thread inside each app process (single-host SQLite setups; issue 8)
    embedded_worker: bool = False
    # Share of the elapsed time a background catch-up (metrics rollups, SLA and renewal scans) may work; it rests
    # the rest (issue 23)
    background_duty: float = Field(default=0.5, gt=0, le=1)

    # Benchmarks (issue 23): a worker writes its background jobs' write-transaction lengths to this JSON file.
    txn_stats_file: str | None = None

    # Process conformance (issue 22): seconds between recomputations of the dashboard's conformance figures.
    conformance_refresh_every_s: float = 3600.0
    # Root causes (issue 22): the product owner's address for the weekly root-cause digest; unset sends none.
    root_cause_digest_to: str | None = None

    # Web
    session_ttl_minutes: int = 8 * 60
    # A verified API key is trusted this long without a database lookup in the process that checked it
    # (revocation and role changes in that process take effect at once; in other processes within this time).
    api_key_cache_seconds: float = 2.0
    cookie_secure: bool = False
    # Sessions end after this long without a request, as well as session_ttl_minutes after login (issue 18).
    session_idle_minutes: int = 30
    # Addresses (or CIDR ranges) of reverse proxies whose X-Forwarded-For / X-Forwarded-Proto are believed.
    # Empty: the headers are ignored and the TCP peer is the client (casemgr.web.clientaddr).
    trusted_proxies: list[str] = Field(default_factory=list)
    # /docs and /openapi.json without a login (off: they describe every route to whoever asks).
    public_api_docs: bool = False
    # Acknowledgements one recipient address can be sent per hour: the public form must not be a mail relay.
    ack_per_recipient_per_hour: int = 3

    # Availability (issue 18): untrusted rule sets are compiled in a child killed after this many seconds;
    # a request must send its headers and its body within these times; connections per client address.
    rules_sandbox_timeout_s: float = 10.0
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    max_connections_per_client: int = 32  # 0: no cap (behind a proxy that caps per client itself)

    @property
    def resolved_data_dir(self) -> Path:
        return self.data_dir.resolve()

    @property
    def effective_database_url(self) -> str:
        if self.database_url and self.database_url.get_secret_value():
            url = self.database_url.get_secret_value()
            # Accept the libpq-style scheme and use psycopg 3.
            if url.startswith("postgresql://"):
                url = "postgresql+psycopg://" + url[len("postgresql://") :]
            elif url.startswith("postgres://"):
                url = "postgresql+psycopg://" + url[len("postgres://") :]
            return url
        return f"sqlite:///{self.resolved_data_dir / 'casemgr.sqlite3'}"

    @property
    def is_sqlite(self) -> bool:
        return self.effective_database_url.startswith("sqlite")

    def secret_key_value(self) -> str:
        if self.secret_key and self.secret_key.get_secret_value():
            return self.secret_key.get_secret_value()
        if self.secret_key_file and self.secret_key_file.exists():
            return self.secret_key_file.read_text().strip()
        # Embedded default: generate once and keep it in the data dir, readable only by us.
        path = self.resolved_data_dir / "secret.key"
        if path.exists():
            return path.read_text().strip()
        import secrets

        path.parent.mkdir(parents=True, exist_ok=True)
        value = secrets.token_urlsafe(48)
        path.write_text(value)
        path.chmod(0o600)
        return value


def get_settings() -> Settings:
    """The settings of this process's context (casemgr.runtime): built once by its entry point."""
    return _runtime.current().settings


# At the end: casemgr.runtime imports Settings from here (an import per call cost microseconds on hot paths).
from casemgr import runtime as _runtime  # noqa: E402
