"""The server secret of the audit trail's keyed hashes (``tools.private_digest``): without it, a private
value kept as a hash cannot be guessed by hashing every candidate (a four-digit PIN has 10,000)."""

from __future__ import annotations

import logging
import os
import secrets
import time
from pathlib import Path

from settings import Settings
from storage.errors import StorageError

log = logging.getLogger(__name__)

KEY_FILE = "audit_key"
"""File in the data folder holding the generated key (hex), mode 0600."""


def audit_key(settings: Settings) -> bytes:
    """The key: ``KOMMANDANT_AUDIT_KEY`` if set, else the key file in the data folder, created on first
    use. Raises ``StorageError`` with a sentence when the file can be neither read nor created."""
    if settings.audit_key is not None:
        return settings.audit_key.get_secret_value().encode()
    path = settings.data_dir / KEY_FILE
    try:
        return _key_file(path)
    except OSError as err:
        raise StorageError(
            f"Cannot read or create the audit key {path}: {err.strerror or err}. Make the data folder "
            "writable, or set KOMMANDANT_AUDIT_KEY."
        ) from err


def _key_file(path: Path) -> bytes:
    """Read the key file, or create it with a new random key; of processes racing to create it, one wins
    (``O_EXCL``) and the others read what it wrote."""
    for _ in range(50):
        if path.exists():
            value = path.read_text(encoding="utf-8").strip()
            if value:
                return value.encode()
            time.sleep(0.02)  # another process created it and is writing the key
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            continue
        value = secrets.token_hex(32)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(value + "\n")
        log.info("generated a new audit key in %s", path)
        return value.encode()
    raise OSError(f"{path} stays empty")
