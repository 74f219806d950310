"""Web chat: Enter -> first reply token in headless Chromium, Kommandant beside a bare Chainlit app, one run.

python bench/web.py [--runs 15]      # prints JSON

Kommandant: ``kommandant up`` (the embedded default: embedded Postgres, in-process bus and agents,
auto-login of the local admin, thread history in Postgres) answering a template-matched command. The
baseline: this same file run by ``chainlit run`` with a hook that streams one token at once (no login,
no data layer, no tool). Both are measured by the same page probe (keydown Enter -> the first text of a
new assistant message), after a warm-up, on the same machine in the same run. Target: Kommandant's
median under 150 ms.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.web.chromium import CHROMIUM, CHROMIUM_ARGS, FIRST_TOKEN_PROBE  # noqa: E402

BIN = Path(sys.executable).parent
TARGET_MS = 150.0
BASELINE_ENV = "KOMMANDANT_BENCH_WEB_BASELINE"
REPLY = '[data-step-type="assistant_message"]'
if os.environ.get(BASELINE_ENV):  # loaded by `chainlit run bench/web.py`: the bare app
    import chainlit as cl

    @cl.on_message
    async def _echo(message: cl.Message) -> None:
        reply = cl.Message(content="")
        await reply.stream_token("ok")
        await reply.send()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def _server(command: list[str], env: dict[str, str], url: str) -> Iterator[None]:
    """Start a server process and wait until ``url`` answers; stop it afterwards."""
    import httpx

    # Chainlit would open a data layer of its own if DATABASE_URL were set: the baseline has none.
    base = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    proc = subprocess.Popen(
        command, cwd=ROOT, env={**base, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url, timeout=2).status_code < 500:
                    break
            if proc.poll() is not None:
                raise SystemExit(f"{command[0]} stopped while starting (exit {proc.returncode})")
            time.sleep(0.3)
        else:
            raise SystemExit(f"{url} did not answer within 180 s")
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def _measure(browser: Any, url: str, command: str, runs: int) -> list[float]:
    page = browser.new_page()
    page.set_default_timeout(30_000)
    page.goto(url)
    box = page.locator("#chat-input")
    box.wait_for()
    page.wait_for_timeout(1500)  # the socket connects and the chat starts
    times = []
    for i in range(runs + 3):  # three warm-up turns
        before = page.locator(REPLY).count()
        page.evaluate(FIRST_TOKEN_PROBE)
        box.fill(command)
        box.press("Enter")
        page.wait_for_function("() => window.__firstTokenAt !== null")
        enter, first = page.evaluate("() => [window.__enterAt, window.__firstTokenAt]")
        page.wait_for_function(
            "n => document.querySelectorAll('[data-step-type=\"assistant_message\"]').length > n", arg=before
        )
        page.wait_for_timeout(300)  # the turn's last updates
        if i >= 3:
            times.append(float(first - enter))
    page.close()
    return times


def _summary(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    return {
        "median_ms": round(statistics.median(ordered), 1),
        "p90_ms": round(ordered[int(0.9 * (len(ordered) - 1))], 1),
        "min_ms": round(ordered[0], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as data, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        port = _free_port()
        baseline = [str(BIN / "chainlit"), "run", str(Path(__file__)), "--headless", "--port", str(port)]
        with _server(baseline, {BASELINE_ENV: "1", "CHAINLIT_AUTH_SECRET": ""}, f"http://127.0.0.1:{port}/"):
            results["bare_chainlit"] = _summary(
                _measure(browser, f"http://127.0.0.1:{port}/", "hi", args.runs)
            )
        port = _free_port()
        env = {"KOMMANDANT_DATA_DIR": data, "KOMMANDANT_LLM_MODEL": "", "KOMMANDANT_LOG_LEVEL": "WARNING"}
        up = [str(BIN / "kommandant"), "up", "--port", str(port)]
        chat = f"http://127.0.0.1:{port}/chat"
        with _server(up, env, f"http://127.0.0.1:{port}/healthz"):
            import httpx

            while httpx.get(f"http://127.0.0.1:{port}/healthz").json().get("status") != "ok":
                time.sleep(0.3)
            results["kommandant_status"] = _summary(_measure(browser, chat, "what's the status", args.runs))
            # a command whose tool embeds the question (memory_recall: the local embedding model)
            results["kommandant_recall"] = _summary(_measure(browser, chat, "what is my editor", args.runs))
        browser.close()
    ours = results["kommandant_status"]["median_ms"]
    print(
        json.dumps(
            {
                "figure": "Enter -> first reply token in headless Chromium (ms)",
                "runs": args.runs,
                "baseline": results["bare_chainlit"],
                "kommandant": results["kommandant_status"],
                "kommandant_command": "what's the status (template-matched)",
                "kommandant_recall": results["kommandant_recall"],
                "kommandant_recall_command": "what is my editor (template-matched; embeds the question)",
                "overhead_median_ms": round(ours - results["bare_chainlit"]["median_ms"], 1),
                "target_ms": TARGET_MS,
                "meets_target": ours < TARGET_MS,
                "load_average_1m": round(os.getloadavg()[0], 2),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
