"""`kommandant bots …` as a person types it (real subprocesses, real database), and shell text that
must never reach a shell: `kommandant ask 'start the bot x; touch /tmp/pwned'` leaves no file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from storage import Database
from storage.audit import AuditLog

ROOT = Path(__file__).resolve().parents[2]
KOMMANDANT = [sys.executable, "-m", "assistant.cli"]


def cli(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("KOMMANDANT_")} | env
    return subprocess.run(
        [*KOMMANDANT, *args], capture_output=True, text=True, env=full, timeout=timeout, cwd=ROOT
    )


@pytest.fixture
def env(db: Database, tmp_path: Path) -> dict[str, str]:
    return {
        "KOMMANDANT_DATABASE_URL": db.url,
        "KOMMANDANT_DATA_DIR": str(tmp_path / "data"),
        "KOMMANDANT_LLM_MODEL": "",
        "KOMMANDANT_BOTS_GRACE": "1",
        "COLUMNS": "200",
    }


async def test_add_list_show_remove(db: Database, env: dict[str, str]) -> None:
    added = cli(
        "bots", "add", "crawler", "--memory-mb", "50", "--cpu-percent", "80", "--restart", "always",
        "--env", "LEVEL=info", "--secret", "TOKEN=hunter2-secret", "--description", "Crawls the docs",
        "--", sys.executable, "-c", "print('crawling')", "--token=hunter2-secret",
        env=env,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert "Registered the bot crawler" in added.stdout and "hunter2-secret" not in added.stdout

    listed = cli("bots", "list", env=env)
    assert listed.returncode == 0, listed.stderr
    for part in ("crawler", "stopped", "never ran", "always", "50 MB", "80 % CPU", "Crawls the docs"):
        assert part in listed.stdout, listed.stdout

    shown = cli("bots", "show", "crawler", env=env)
    assert shown.returncode == 0, shown.stderr
    assert "LEVEL=info" in shown.stdout and "TOKEN=***" in shown.stdout and "--token=***" in shown.stdout
    assert "hunter2-secret" not in shown.stdout

    again = cli("bots", "add", "crawler", "--", "true", env=env)
    assert again.returncode == 2 and "A bot called 'crawler' is registered already" in again.stderr

    removed = cli("bots", "remove", "crawler", env=env)
    assert removed.returncode == 0 and "Removed the bot crawler" in removed.stdout
    gone = cli("bots", "show", "crawler", env=env)
    assert gone.returncode == 2 and "There is no bot called 'crawler'" in gone.stderr

    rows = [e for e in await AuditLog(db.sessionmaker).tail(20) if e.kind.startswith("bot_")]
    assert [(e.kind, e.actor, e.data["bot"]) for e in rows] == [
        ("bot_registered", "local", "crawler"),
        ("bot_removed", "local", "crawler"),
    ]
    assert "hunter2-secret" not in json.dumps([e.data for e in rows])
    assert rows[0].data["env"] == ["LEVEL", "TOKEN"]


def test_bad_registrations_are_one_sentence_naming_the_option(env: dict[str, str]) -> None:
    cases = [
        (["x; touch /tmp/pwned", "--", "true"], "NAME: Value error, use letters, digits"),
        (["$(reboot)", "--", "true"], "NAME: Value error"),
        (["ok", "--restart", "sometimes", "--", "true"], "--restart: Input should be 'no', 'on-failure'"),
        (["ok", "--memory-mb", "0", "--", "true"], "--memory-mb: Input should be greater than or equal to 1"),
        (["ok", "--env", "NOVALUE", "--", "true"], "--env takes KEY=VALUE, not 'NOVALUE'"),
        (["ok", "--env", "A B=1", "--", "true"], "--env: Value error, 'A B' is not an environment"),
        (["ok", "--role", "viewer", "--", "true"], "As a viewer you may not change the bot registry"),
        (["ok", "--role", "root", "--", "true"], "Unknown role 'root'"),
    ]
    for args, message in cases:
        result = cli("bots", "add", *args, env=env)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert message in " ".join(result.stderr.split()), (args, result.stderr)
        assert "Traceback" not in result.stderr
    assert "No bots are registered" in cli("bots", "list", env=env).stdout


def test_reload_reads_manifests_and_names_the_bad_file_and_field(env: dict[str, str], tmp_path: Path) -> None:
    folder = tmp_path / "manifests"
    folder.mkdir()
    (folder / "alpha.toml").write_text('command = ["python", "alpha.py"]\ndescription = "first"')
    (folder / "beta.toml").write_text('command = ["python", "beta.py"]\nmemory_mb = 64')
    with_dir = env | {"KOMMANDANT_BOTS_DIR": str(folder)}
    first = cli("bots", "reload", env=with_dir)
    assert first.returncode == 0, first.stderr
    assert "added alpha, beta" in first.stdout

    (folder / "beta.toml").write_text('command = ["python", "beta.py"]\nmemory_mb = 128')
    (folder / "alpha.toml").unlink()
    second = cli("bots", "reload", "--dir", str(folder), env=env)
    assert "updated beta; removed alpha" in " ".join(second.stdout.split()), second.stdout
    assert "128 MB" in cli("bots", "show", "beta", env=env).stdout

    (folder / "gamma.toml").write_text('command = ["python"]\ncpu_percent = "lots"')
    bad = cli("bots", "reload", env=with_dir)
    assert bad.returncode == 2
    said = " ".join(bad.stderr.split())
    assert "No bot was changed" in said and "gamma.toml: cpu_percent: Input should be a valid number" in said
    assert "gamma" not in cli("bots", "list", env=env).stdout


def test_shell_text_never_reaches_a_shell(env: dict[str, str], tmp_path: Path) -> None:
    """Names with shell text are refused; arguments with shell text are passed to the bot literally."""
    probe = tmp_path / "pwned"
    existed = Path("/tmp/pwned").exists()
    script = "import sys; print('args:', sys.argv[1:], flush=True)"
    literal = [f"$(touch {probe}-1)", f"`touch {probe}-2`", f"; touch {probe}-3"]
    added = cli("bots", "add", "x", "--restart", "no", "--", sys.executable, "-c", script, *literal, env=env)
    assert added.returncode == 0, added.stderr
    for text in (
        "start the bot x; touch /tmp/pwned",
        f"start the bot x; touch {probe}",
        f"start the $(touch {probe}) bot",
        f"start the `touch {probe}` bot",
    ):
        asked = cli("ask", text, "--json", env=env)
        assert asked.returncode == 0, asked.stderr
        ran = json.loads(asked.stdout)["tools"]
        assert all(tool["tool"] != "bots_start" or tool["ok"] for tool in ran), ran
    started = json.loads(cli("ask", "start the x bot", "--json", env=env).stdout)
    assert [(t["tool"], t["ok"]) for t in started["tools"]] == [("bots_start", True)]
    logs = json.loads(cli("ask", "show the logs of the x bot", "--json", env=env).stdout)
    assert f"$(touch {probe}-1)" in json.dumps(logs["tools"][0]["structured"]["lines"])
    assert not list(tmp_path.glob("pwned*")), "shell text ran"
    assert existed or not Path("/tmp/pwned").exists(), "shell text ran: /tmp/pwned exists"
