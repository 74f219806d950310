"""Secrets never reach the log: the configured secrets are masked in every log record of the process.

A provider's error may echo the API key, a driver's error the database URL; whichever logger writes it
(ours, litellm's, uvicorn's with its own handlers), the record is masked when it is created: its message,
its arguments and its formatted exception.
"""

from __future__ import annotations

import logging
import re
import traceback
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote, urlsplit

if TYPE_CHECKING:
    from settings import Settings

__all__ = ["MASK", "SecretMasker", "configured_secrets", "mask_secrets_in_logs"]

MASK = "***"
MIN_SECRET_CHARS = 4
"""Shorter values are not masked: a two-letter password would blank out every word holding those letters
(and is no secret worth the name)."""
_SECRET_PARAM = re.compile(r"password|pass|pwd|token|key|secret", re.IGNORECASE)
"""Query parameter names whose values are secrets (the words ``storage.database.redact`` hides too)."""


def configured_secrets(settings: Settings) -> list[str]:
    """The value of every ``SecretStr`` setting, and the password and secret query values inside those
    that are URLs (a log line may show the URL in another form, e.g. with ``+asyncpg``)."""
    from pydantic import SecretStr

    found: set[str] = set()
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if isinstance(value, SecretStr) and value.get_secret_value():
            secret = value.get_secret_value()
            found.add(secret)
            found.update(_url_secrets(secret))
    return sorted(found)


def _url_secrets(value: str) -> Iterator[str]:
    """The password after the user name and the values of secret query parameters, as written and decoded."""
    try:
        parts = urlsplit(value)
        password = parts.password
    except ValueError:
        return
    if not parts.scheme or not parts.netloc:
        return
    if password:
        yield password
        yield unquote(password)
    for raw in parts.query.split("&"):
        key, _, written = raw.partition("=")
        if written and _SECRET_PARAM.search(unquote(key)):
            yield written
    for key, decoded in parse_qsl(parts.query):
        if decoded and _SECRET_PARAM.search(key):
            yield decoded


class SecretMasker(logging.Filter):
    """A logging filter that replaces each secret with ``***`` in a record's message, arguments,
    formatted exception and stack; it never drops a record."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._pattern: re.Pattern[str] | None = None
        self.set_secrets(secrets)

    def set_secrets(self, secrets: Iterable[str]) -> None:
        """Mask these from now on (replacing the ones given before)."""
        kept = sorted({s for s in secrets if len(s) >= MIN_SECRET_CHARS}, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, kept))) if kept else None

    def mask(self, text: str) -> str:
        """``text`` with every secret replaced by ``***``."""
        return self._pattern.sub(MASK, text) if self._pattern is not None else text

    def filter(self, record: logging.LogRecord) -> bool:
        pattern = self._pattern
        if pattern is None:
            return True
        record.msg = self._masked_arg(record.msg)
        if isinstance(record.args, dict):
            record.args = {key: self._masked_arg(value) for key, value in record.args.items()}
        elif isinstance(record.args, tuple):
            record.args = tuple(self._masked_arg(arg) for arg in record.args)
        if record.exc_info and record.exc_info[1] is not None:
            text = record.exc_text or "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
            if pattern.search(text):
                # the exception object still holds the secret: log its masked text only
                record.exc_text, record.exc_info = self.mask(text), None
        elif record.exc_text:
            record.exc_text = self.mask(record.exc_text)
        if record.stack_info:
            record.stack_info = self.mask(record.stack_info)
        return True

    def _masked_arg(self, arg: Any) -> Any:
        """A string argument masked; another object (an exception…) as masked text if its text holds a secret
        (numbers stay numbers, so ``%d`` still formats)."""
        if isinstance(arg, str):
            return self.mask(arg)
        if isinstance(arg, int | float) or arg is None:
            return arg
        try:
            text = str(arg)
        except Exception:  # logging reports a broken __str__ itself when it formats the record
            return arg
        masked = self.mask(text)
        return masked if masked != text else arg


_installed: SecretMasker | None = None


def mask_secrets_in_logs(secrets: Iterable[str]) -> SecretMasker:
    """Mask ``secrets`` in every log record this process creates from now on, whichever handler writes it
    (a filter on our handler alone would miss loggers with their own, such as uvicorn's). Called again,
    it replaces the secrets."""
    global _installed
    if _installed is not None:
        _installed.set_secrets(secrets)
        return _installed
    masker = _installed = SecretMasker(secrets)
    make = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make(*args, **kwargs)
        masker.filter(record)
        return record

    logging.setLogRecordFactory(factory)
    return masker
