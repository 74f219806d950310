"""Settings: read once at each entry point and passed down; no other module reads the environment."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from platformdirs import user_data_path
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_data_dir() -> Path:
    return user_data_path("kommandant", appauthor=False)


class Settings(BaseSettings):
    """Every knob Kommandant has. Environment variables use the prefix ``KOMMANDANT_``."""

    model_config = SettingsConfigDict(
        env_prefix="KOMMANDANT_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    data_dir: Path = Field(
        default_factory=_default_data_dir,
        description="Where the embedded database, logs and bot files live.",
    )
    database_url: SecretStr | None = Field(
        default=None,
        description="Any Postgres with pgvector (postgresql://…). Unset: embedded PostgreSQL in data_dir.",
    )
    amqp_url: SecretStr | None = Field(
        default=None,
        description="RabbitMQ URL (amqp://…). Unset: the in-process bus with every agent in one process.",
    )
    bus_prefix: str = Field(default="kommandant", description="Prefix of exchange and queue names.")
    call_timeout: float = Field(default=30.0, gt=0, description="Seconds a tool call may take end to end.")
    call_retries: int = Field(
        default=3, ge=0, description="Redeliveries of a failing call before it is dead-lettered."
    )
    max_message_bytes: int = Field(default=1_048_576, gt=0, description="Largest bus message body accepted.")
    host: str = Field(default="127.0.0.1", description="Web server bind address.")
    port: int = Field(default=8000, ge=1, le=65535, description="Web server port.")
    timezone: str = Field(default="UTC", description="Time zone used to read times such as 'at five pm'.")
    approval_ttl: float = Field(default=900.0, gt=0, description="Seconds before a pending approval expires.")
    heartbeat_interval: float = Field(default=5.0, gt=0, description="Seconds between agent heartbeats.")
    llm_model: str = Field(
        default="ollama_chat/llama3.2",
        description="litellm model for the fallback and chat answers; empty turns the LLM off.",
    )
    ollama_url: str = Field(default="http://127.0.0.1:11434", description="Ollama server URL.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(default="INFO")

    # --- web chat: login and uploads (issue 5; its owner edits only this section) ---

    # --- voice: speech in and out (issue 6; its owner edits only this section) ---

    # --- knowledge, memory, embeddings and the LLM (issue 7; its owner edits only this section) ---

    # --- MCP server and bridge (issue 8; its owner edits only this section) ---

    @field_validator("database_url", "amqp_url", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value in ("", None) else value

    @property
    def embedded_db_dir(self) -> Path:
        """Folder of the embedded PostgreSQL cluster."""
        return self.data_dir / "pgdata"

    @property
    def embedded(self) -> bool:
        """True when no outside broker is configured: every agent runs in this process."""
        return self.amqp_url is None
