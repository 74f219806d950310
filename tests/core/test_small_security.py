"""Small findings of the security review: secrets never reach the log; a too-long fact says so."""

from __future__ import annotations

import io
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web
from pydantic import SecretStr

from assistant.cli.secrets import SecretMasker, configured_secrets, mask_secrets_in_logs
from assistant.events import Failed, IntentRecognized, ToolStarted
from assistant.llm import LLM, LLMUnavailableError
from assistant.runtime import Runtime
from settings import Settings
from tests.core.test_turns import reply, turn
from tools.builtin.memory import RememberInput

KEY = "sk-live-4f9a8b7c6d5e"


class ProviderError(Exception):
    """An error the way some providers word it: echoing the key they refused."""


def _capture(logger: logging.Logger) -> io.StringIO:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    return out


def _log_the_key_three_ways(logger: logging.Logger) -> None:
    logger.warning(f"provider said: invalid api key {KEY}")
    logger.warning("provider said: %s (key %r)", ProviderError(f"Incorrect API key provided: {KEY}"), KEY)
    try:
        raise ProviderError(f"401 Unauthorized for key {KEY}")
    except ProviderError:
        logger.exception("LLM call failed")


def test_the_filter_masks_message_args_and_traceback() -> None:
    logger = logging.getLogger("test.secrets.filter")
    out = _capture(logger)
    logger.handlers[0].addFilter(SecretMasker([KEY]))
    _log_the_key_three_ways(logger)
    text = out.getvalue()
    assert KEY not in text
    assert (
        "invalid api key ***" in text and "Incorrect API key provided: ***" in text and "(key '***')" in text
    )
    assert "Traceback" in text and "401 Unauthorized for key ***" in text
    assert _format(SecretMasker([KEY]), "%d apples", 3) == "3 apples"  # numbers still format


@pytest.fixture
def masked_process() -> Iterator[None]:
    mask_secrets_in_logs([KEY])
    yield
    mask_secrets_in_logs([])


def test_installed_masking_covers_loggers_with_their_own_handlers(masked_process: None) -> None:
    logger = logging.getLogger("test.secrets.own_handler")  # like uvicorn's: not propagated to ours
    out = _capture(logger)
    _log_the_key_three_ways(logger)
    assert KEY not in out.getvalue() and out.getvalue().count("***") >= 4


def test_configured_secrets_are_every_secret_setting_and_url_passwords(tmp_path: Path) -> None:
    settings = Settings.model_validate(
        {
            "data_dir": tmp_path,
            "database_url": "postgresql://u:pg-pass%21word@h/db?sslpassword=ssl-secret&sslmode=require",
            "amqp_url": "amqp://guest:rabbit-pass@h:5672/",
            "llm_api_key": KEY,
            "web_auth_secret": "web-signing-secret",
        }
    )
    secrets = configured_secrets(settings)
    for expected in (
        "pg-pass%21word",
        "pg-pass!word",
        "ssl-secret",
        "rabbit-pass",
        KEY,
        "web-signing-secret",
    ):
        assert expected in secrets
    assert "require" not in secrets and "guest" not in secrets
    assert all(isinstance(s, str) for s in secrets) and not isinstance(settings.llm_api_key, str)
    assert isinstance(settings.llm_api_key, SecretStr)


def test_every_entry_point_installs_the_masking(tmp_path: Path) -> None:
    """``load_settings`` (every command: the CLI, `up`, `mcp`) masks the configured secrets."""
    code = (
        "import logging; from assistant.cli.console import load_settings; load_settings(); "
        "logging.getLogger('uvicorn.error').propagate = False; "
        "logging.getLogger('uvicorn.error').addHandler(logging.StreamHandler()); "
        f"logging.getLogger('assistant.llm').warning('key %s refused', '{KEY}'); "
        f"logging.getLogger('uvicorn.error').error('startup: {KEY}')"
    )
    env = {"KOMMANDANT_LLM_API_KEY": KEY, "KOMMANDANT_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert result.returncode == 0, result.stderr
    assert KEY not in result.stderr and "key *** refused" in result.stderr and "startup: ***" in result.stderr


def _format(masker: SecretMasker, message: str, *args: object) -> str:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, message, args, None)
    masker.filter(record)
    return record.getMessage()


async def test_an_llm_error_echoing_the_key_is_logged_without_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A provider that answers 401 with the key in its error (as some do): the log line hides it."""

    async def refuse(request: web.Request) -> web.Response:
        sent = request.headers.get("Authorization", "").removeprefix("Bearer ")
        body = {"error": {"message": f"Incorrect API key provided: {sent}", "type": "invalid_request_error"}}
        return web.json_response(body, status=401)

    app = web.Application()
    app.router.add_post("/v1/chat/completions", refuse)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    settings = Settings.model_validate(
        {
            "data_dir": tmp_path,
            "llm_model": "openai/gpt-test",
            "llm_api_base": f"http://127.0.0.1:{port}/v1",
            "llm_api_key": KEY,
        }
    )
    try:
        with (
            caplog.at_level(logging.WARNING, logger="assistant.llm"),
            pytest.raises(LLMUnavailableError) as info,
        ):
            await LLM(settings).chat([{"role": "user", "content": "hi"}])
    finally:
        await runner.cleanup()
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name == "assistant.llm")
    assert "LLM call failed" in logged and "Incorrect API key provided: ***" in logged
    assert KEY not in logged and KEY not in str(info.value)


@pytest.mark.parametrize("runtime", ["local"], indirect=True)
async def test_a_fact_over_the_limit_says_it_is_too_long(runtime: Runtime) -> None:
    limit = RememberInput.model_json_schema()["properties"]["fact"]["maxLength"]
    fact = "x" * (limit + 100)
    events = await turn(runtime, "remember that " + fact)
    expected = f"That is too long to remember ({len(fact)} characters; the limit is {limit})."
    assert reply(events) == expected
    assert [e.message for e in events if isinstance(e, Failed)] == [expected]
    assert not [e for e in events if isinstance(e, ToolStarted | IntentRecognized)]  # nothing ran
    just_right = await turn(runtime, "remember that " + "y" * limit)
    assert reply(just_right).startswith("Got it")
