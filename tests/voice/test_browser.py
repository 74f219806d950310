"""The browser microphone end to end: headless Chromium's fake microphone plays a WAV of a spoken command
into the real web chat (`kommandant up` in a subprocess, with the test models); the command reaches its
tool and the transcript shows as the person's message."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import pytest_asyncio

from tests.voice.conftest import Clip
from tests.web.chromium import CHROMIUM, CHROMIUM_ARGS, require_chromium
from voice import decode_file, wav_bytes

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest_asyncio.fixture(loop_scope="session")
async def server_db(make_database_url: Callable[[], Awaitable[str]]) -> str:
    return await make_database_url()


@pytest.fixture
def server(server_db: str, voice_env: dict[str, str], tmp_path: Path) -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    env = {k: v for k, v in os.environ.items() if not k.startswith("KOMMANDANT_")}
    env.update(
        voice_env,
        KOMMANDANT_DATABASE_URL=server_db,
        KOMMANDANT_DATA_DIR=str(tmp_path / "data"),
        KOMMANDANT_LLM_MODEL="",
        KOMMANDANT_LOG_LEVEL="WARNING",
    )
    log = (tmp_path / "server.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "assistant.cli", "up", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"the web server stopped: {(tmp_path / 'server.log').read_text()[-2000:]}")
            try:
                if httpx.get(f"{url}/healthz", timeout=2).json().get("status") == "ok":
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        else:
            pytest.fail("the web server did not become ready within 180 s")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def test_microphone_command_reaches_its_tool(
    server: str, clips: dict[str, list[Clip]], tmp_path: Path
) -> None:
    require_chromium()
    from playwright.sync_api import sync_playwright

    # Silence, a spoken command, then silence long enough for the VAD to end the utterance. Through the
    # browser's capture path Whisper base hears Piper's "show my reminders" as "till my reminders" (the
    # soft "sh" onset), so the test speaks "what reminders do I have"; the lead-in is generous.
    speech = decode_file(clips["piper"][11].path)  # "what reminders do I have"
    # The fake device plays from the moment capture opens, and on a busy machine the first chunk reaches
    # the server seconds later (3.2 s measured): a 6 s lead-in keeps the command whole.
    pause = np.zeros(16_000 * 3, np.float32)
    microphone = tmp_path / "microphone.wav"
    microphone.write_bytes(wav_bytes(np.concatenate([pause, pause, speech, pause, pause])))
    args = [
        *CHROMIUM_ARGS,
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={microphone}%noloop",
        "--autoplay-policy=no-user-gesture-required",
    ]
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=args)
        try:
            page = browser.new_page()
            page.set_default_timeout(90_000)
            page.goto(f"{server}/chat")
            page.locator("#chat-input").wait_for()
            page.wait_for_timeout(1_000)
            page.locator("body").click(position={"x": 5, "y": 5})
            page.keyboard.press("p")  # Chainlit's microphone shortcut
            said = page.locator('[data-step-type="user_message"]').filter(has_text="reminders")
            said.first.wait_for()
            step = page.get_by_text("reminders_list")
            step.first.wait_for()
            # The reply comes after the step: wait for it (the welcome notice is an assistant message too).
            reply = page.locator('[data-step-type="assistant_message"]').filter(has_text="reminder")
            reply.first.wait_for()
        except Exception:
            page.screenshot(path=str(tmp_path / "failed.png"))
            raise
        finally:
            browser.close()
