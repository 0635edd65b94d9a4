"""Settings, read once from the environment and an optional `.env` file."""

from functools import lru_cache
from typing import Annotated

from pydantic import field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# Schemes as Neon's console and Heroku-style tools hand them out, mapped to the psycopg 3 driver.
_POSTGRES_SCHEMES = ("postgres://", "postgresql://", "postgresql+psycopg2://")


class MissingDatabaseUrl(RuntimeError):
    """The service was started without a database to serve on."""

    def __init__(self) -> None:
        super().__init__(
            "DATABASE_URL is not set: set it to a PostgreSQL connection string "
            "(locally, `make run` starts an embedded PostgreSQL and sets it)"
        )


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    # A PostgreSQL URL; empty until set, and the app refuses to start without one.
    database_url: str = ""
    # Connections kept by one process; a Lambda container serves one request at a time.
    db_pool_size: int = 5
    # Seconds for one connection attempt, and for all attempts of one request while Neon wakes up.
    db_connect_timeout: int = 5
    db_connect_budget: float = 12.0
    # Milliseconds a statement may run on the server before it is cancelled (0 = no limit).
    db_statement_timeout_ms: int = 10_000
    log_level: str = "INFO"
    # Origins allowed to call the API from a browser, comma-separated; none means CORS is off.
    cors_origins: Annotated[list[str], NoDecode] = []
    docs_enabled: bool = True

    @field_validator("database_url")
    @classmethod
    def use_psycopg_driver(cls, url: str) -> str:
        if not url or url.startswith("postgresql+psycopg://"):
            return url
        for scheme in _POSTGRES_SCHEMES:
            if url.startswith(scheme):
                return "postgresql+psycopg://" + url[len(scheme):]
        raise ValueError("DATABASE_URL must be a PostgreSQL URL (postgresql://…)")

    @field_validator("cors_origins", mode="before")
    @classmethod
    def split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value


@lru_cache
def get_settings() -> Settings:
    return Settings()
