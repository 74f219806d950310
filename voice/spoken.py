"""Spoken-form normalisation of a transcript before it is parsed like typed text.

The intent parser already reads numbers in words, "p.m." and fillers such as "um"; this adds what only
speech produces: spelled punctuation ("web dash crawler", "example dot com"), spoken filler phrases,
recogniser tags for non-speech ("[BLANK_AUDIO]", "(music)") and times written "9.30".
"""

from __future__ import annotations

import re

__all__ = ["normalize_transcript"]

_TAGS = re.compile(r"\[[^\]]*\]|\([^)]*\)|\*[^*]*\*|♪+")
_JOINERS = {"dot": ".", "dash": "-", "hyphen": "-", "underscore": "_", "slash": "/", "at sign": "@"}
_JOIN = re.compile(r"(?<=\w)\s+(" + "|".join(_JOINERS) + r")\s+(?=\w)", re.IGNORECASE)
_FILLERS = re.compile(
    r"(?:^|(?<=[\s,]))(?:you know|i mean|uh+|um+|erm|er|ah|hmm+|mm+)(?:[,.]|(?=\s)|$)\s*", re.IGNORECASE
)
_DOT_TIME = re.compile(
    r"\b([01]?\d|2[0-3])\.([0-5]\d)\b(?=\s*(?:[ap]\.?m\.?|o'clock|in the|tomorrow|tonight|today|$))", re.I
)
_MERIDIEM = re.compile(r"\b([ap])\s*\.\s*m\b\.?", re.IGNORECASE)
""""p .m." and "a. m.": Whisper sometimes spaces the abbreviation apart."""
_SPACES = re.compile(r"\s+")


def normalize_transcript(text: str) -> str:
    """Turn a recogniser's text into what a person would have typed; never raises."""
    text = _TAGS.sub(" ", text)
    text = _JOIN.sub(lambda m: _JOINERS[m.group(1).lower()], text)
    text = _FILLERS.sub("", text)
    text = _MERIDIEM.sub(lambda m: m.group(1) + ".m.", text)
    text = _DOT_TIME.sub(r"\1:\2", text)
    text = _SPACES.sub(" ", text).strip()
    return text.strip(" ,")
