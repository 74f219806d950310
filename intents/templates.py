"""Loading sentence templates: the YAML files beside the built-in tools, merged into one hassil dict."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from hassil.util import merge_dict

from tools import LIVE_KINDS, TEMPLATE_DIR, EntityKind

__all__ = ["LIVE_LISTS", "TOO_LONG", "examples_of", "load_templates", "too_long_of"]

LIVE_LISTS: dict[str, EntityKind] = {kind.live_list: kind for kind in LIVE_KINDS if kind.live_list}
"""Template list name -> the kind whose live names fill it at match time."""
TOO_LONG = "That {argument} is too long ({length} characters; the limit is {limit})."
"""The reply to free text over its limit, for an intent without its own ``too_long`` sentence."""


def load_templates(*folders: Path) -> dict[str, Any]:
    """Merge every ``*.yaml`` in ``folders`` (the built-in tools' folder when none is given) into one dict;
    later folders add to earlier ones (a new tool's templates beside the built-in ones)."""
    merged: dict[str, Any] = {"language": "en", "intents": {}}
    for folder in folders or (TEMPLATE_DIR,):
        for path in sorted(folder.glob("*.yaml")):
            with path.open(encoding="utf-8") as handle:
                data = yaml.safe_load(handle) or {}
            merge_dict(merged, data)
    return merged


def examples_of(templates: dict[str, Any]) -> dict[str, list[str]]:
    """Example sentences per intent (the ``examples`` key beside ``data``, ignored by hassil)."""
    found: dict[str, list[str]] = {}
    for name, intent in templates.get("intents", {}).items():
        examples = intent.get("examples") if isinstance(intent, dict) else None
        found[name] = [str(example) for example in examples or []]
    return found


def too_long_of(templates: dict[str, Any]) -> dict[str, str]:
    """Per intent, the reply to free text over its length limit (the ``too_long`` key beside ``data``,
    ignored by hassil), with ``{argument}``, ``{length}`` and ``{limit}`` filled in at match time."""
    found: dict[str, str] = {}
    for name, intent in templates.get("intents", {}).items():
        sentence = intent.get("too_long") if isinstance(intent, dict) else None
        if not sentence:
            continue
        try:
            str(sentence).format(argument="", length=0, limit=0)
        except (KeyError, IndexError, ValueError) as err:
            raise ValueError(
                f"intent {name!r}: too_long {sentence!r} may use only {{argument}}, {{length}}, {{limit}}"
            ) from err
        found[name] = str(sentence)
    return found


def with_live_list_placeholders(templates: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``templates`` where every live list exists (empty) so sentences referring to it parse."""
    result = copy.deepcopy(templates)
    lists = result.setdefault("lists", {})
    for name in LIVE_LISTS:
        lists.setdefault(name, {"values": []})
    return result
