"""Settings, read once from the environment and an optional `.env` file."""

from functools import lru_cache
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# Where a JWKS may be fetched over plain http: local runs and tests only.
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
# RFC 7518 3.2: an HS256 key of fewer bytes than the hash's output is guessable.
MIN_SECRET_BYTES = 32

# Schemes as Neon's console and Heroku-style tools hand them out, mapped to the psycopg 3 driver.
_POSTGRES_SCHEMES = ("postgres://", "postgresql://", "postgresql+psycopg2://")


def psycopg_url(url: str) -> str:
    """A PostgreSQL URL as pasted (postgres://, postgresql://, …) for the psycopg 3 driver."""
    if url.startswith("postgresql+psycopg://"):
        return url
    for scheme in _POSTGRES_SCHEMES:
        if url.startswith(scheme):
            return "postgresql+psycopg://" + url[len(scheme):]
    raise ValueError("DATABASE_URL must be a PostgreSQL URL (postgresql://…)")


class MissingDatabaseUrl(RuntimeError):
    """The service was started without a database to serve on."""

    def __init__(self) -> None:
        super().__init__(
            "DATABASE_URL is not set: set it to a PostgreSQL connection string "
            "(local runs with requirements-local.txt installed use an embedded PostgreSQL instead)"
        )


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    # A PostgreSQL URL. Empty: a local run serves on the embedded PostgreSQL (todo.local_database);
    # where that package is not installed (Lambda), the app refuses to start.
    database_url: str = ""
    # Connections kept by one process; a Lambda container serves one request at a time.
    db_pool_size: int = 5
    # Seconds for one connection attempt, and for all attempts of one request while Neon wakes up.
    db_connect_timeout: int = 5
    db_connect_budget: float = 12.0
    # Milliseconds a statement may run on the server before it is cancelled (0 = no limit).
    db_statement_timeout_ms: int = 10_000
    # Whether a cold start that finds the schema behind migrates it (else: 503 until it is).
    db_migrate_on_start: bool = True
    log_level: str = "INFO"
    # Origins allowed to call the API from a browser, comma-separated; none means CORS is off.
    cors_origins: Annotated[list[str], NoDecode] = []
    docs_enabled: bool = True
    # Authentication: off while no key source is set (an empty value counts as unset). Checked
    # by auth_is_consistent: a broken or contradictory configuration stops the service at start.
    auth_jwks_url: str | None = None
    auth_jwks: str | None = None
    auth_jwt_secret: SecretStr | None = None
    auth_issuer: str | None = None
    auth_audience: str | None = None

    @field_validator("database_url")
    @classmethod
    def use_psycopg_driver(cls, url: str) -> str:
        return psycopg_url(url) if url else url

    @field_validator("cors_origins", mode="before")
    @classmethod
    def split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value

    @field_validator("auth_jwks_url", "auth_jwks", "auth_jwt_secret", "auth_issuer", "auth_audience", mode="before")
    @classmethod
    def empty_is_unset(cls, value: object) -> object:
        # A deployment template passes an unset variable on as "".
        return None if value == "" else value

    @model_validator(mode="after")
    def auth_is_consistent(self) -> "Settings":
        """A broken or contradictory authentication setting stops the service: it must never
        start open, or with a key source other than the one meant."""
        sources = {
            "AUTH_JWKS_URL": self.auth_jwks_url,
            "AUTH_JWKS": self.auth_jwks,
            "AUTH_JWT_SECRET": self.auth_jwt_secret,
        }
        chosen = [name for name, value in sources.items() if value is not None]
        if len(chosen) > 1:
            raise ValueError(f"{' and '.join(chosen)} are set: choose one key source")
        if not chosen:
            for name, value in (("AUTH_ISSUER", self.auth_issuer), ("AUTH_AUDIENCE", self.auth_audience)):
                if value is not None:
                    raise ValueError(
                        f"{name} is set but no key source is (AUTH_JWKS_URL, AUTH_JWKS or AUTH_JWT_SECRET): "
                        "authentication would be off"
                    )
        if self.auth_jwt_secret is not None:
            length = len(self.auth_jwt_secret.get_secret_value().encode())
            if length < MIN_SECRET_BYTES:
                raise ValueError(f"AUTH_JWT_SECRET has {length} bytes: at least {MIN_SECRET_BYTES} are needed")
        if self.auth_jwks_url is not None:
            _check_jwks_url(self.auth_jwks_url)
        if self.auth_jwks is not None:
            from todo.tokens import parse_key_set  # the JWT library: only when authentication is on

            parse_key_set(self.auth_jwks, source="AUTH_JWKS")
        return self

    @property
    def auth_enabled(self) -> bool:
        return any(source is not None for source in (self.auth_jwks_url, self.auth_jwks, self.auth_jwt_secret))


def _check_jwks_url(url: str) -> None:
    try:
        parts = urlsplit(url)
        scheme, host = parts.scheme, parts.hostname
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        scheme = host = None
    if not host or not (scheme == "https" or (scheme == "http" and host in LOOPBACK_HOSTS)):
        raise ValueError(
            "AUTH_JWKS_URL must be an https:// URL (http:// only on localhost, 127.0.0.1 or [::1])"
        )


@lru_cache
def get_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        # One line, and only pydantic's messages: its full text would repeat the values, secrets too.
        problems = "; ".join(_setting_problem(error) for error in exc.errors())
        raise SystemExit(f"todo: the settings are not valid, the service does not start: {problems}") from None


def _setting_problem(error: dict) -> str:
    message = error["msg"].removeprefix("Value error, ")
    return f"{str(error['loc'][0]).upper()}: {message}" if error["loc"] else message
