"""Private text in the audit trail is kept as a keyed hash (HMAC-SHA256 under a server secret), so a
guessable value (a four-digit PIN) cannot be found by hashing every candidate; equal texts still give
equal digests under one key, rows written before keep their plain sha256, and the chain verifies."""

from __future__ import annotations

import hashlib
import hmac
import stat
import threading
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import text

from assistant.events import Turn
from assistant.runtime import Runtime
from settings import Settings
from storage import Database, StorageError
from storage.audit import AuditLog
from storage.audit_key import KEY_FILE, audit_key
from tools import private_digest

PIN = "8642"


def test_the_digest_is_a_keyed_hash() -> None:
    key, other = b"k" * 32, b"o" * 32
    digest = private_digest(PIN, key)
    assert digest == "hmac-sha256:" + hmac.new(key, PIN.encode(), hashlib.sha256).hexdigest()
    assert digest == private_digest(PIN, key), "same value and key, same digest"
    assert digest != private_digest(PIN, other), "another install's key gives another digest"
    assert digest.split(":", 1)[1] != hashlib.sha256(PIN.encode()).hexdigest()
    guesses = {"sha256:" + hashlib.sha256(f"{n:04d}".encode()).hexdigest() for n in range(10_000)}
    assert digest not in guesses and digest.replace("hmac-", "") not in guesses
    with pytest.raises(ValueError, match="audit key"):
        private_digest(PIN, b"")


def test_the_key_file_is_made_once_private_and_kept(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path / "data")
    key = audit_key(settings)
    path = tmp_path / "data" / KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(key) == 64 and audit_key(settings) == key
    another = Settings(_env_file=None, data_dir=tmp_path / "another")
    assert audit_key(another) != key
    configured = settings.model_copy(update={"audit_key": SecretStr("from the environment")})
    assert audit_key(configured) == b"from the environment"


def test_processes_racing_to_create_the_key_agree(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path / "data")
    keys: list[bytes] = []
    threads = [threading.Thread(target=lambda: keys.append(audit_key(settings))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(keys) == 8 and len(set(keys)) == 1


def test_an_unwritable_data_folder_is_one_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    settings = Settings(_env_file=None, data_dir=blocker / "data")
    with pytest.raises(StorageError, match="KOMMANDANT_AUDIT_KEY"):
        audit_key(settings)


async def test_the_pin_row_keeps_a_keyed_digest_and_the_chain_verifies(
    db: Database, settings: Settings
) -> None:
    log = AuditLog(db.sessionmaker)
    old = "sha256:" + hashlib.sha256(b"my old pin is 1111").hexdigest()
    await log.append("intent", actor="otto", tool="memory_remember", data={"arguments": {"fact": old}})
    async with Runtime(settings, database=db) as rt:
        assert rt.kommandant is not None
        turn = Turn(text=f"remember that my bank pin is {PIN}", user="otto", channel="cli", role="operator")
        [e async for e in rt.kommandant.handle(turn)]
        key = rt.kommandant.audit_key
    assert key == (settings.data_dir / KEY_FILE).read_text().strip().encode()
    async with db.sessionmaker() as session:
        rows = (await session.execute(text("SELECT kind, data FROM audit_log ORDER BY seq"))).all()
    assert PIN not in str([r.data for r in rows])
    facts = [r.data["arguments"]["fact"] for r in rows if r.kind == "intent"]
    fact = f"my bank pin is {PIN}"
    assert facts == [old, private_digest(fact, key)], "the old row keeps its sha256, the new is keyed"
    assert facts[1] != "sha256:" + hashlib.sha256(fact.encode()).hexdigest()
    assert facts[1] != private_digest(fact, b"another install")
    [said] = [r.data["text"] for r in rows if r.kind == "turn"]
    assert said == private_digest(f"remember that my bank pin is {PIN}", key)
    assert (await log.verify()).ok
