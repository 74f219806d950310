"""The hooks in isolation: a transcription counted by outcome, and a label that cannot grow unbounded."""

from __future__ import annotations

import pytest

from telemetry.metrics import TRANSCRIPTION_SECONDS, TRANSCRIPTIONS, _LabelValues, transcription_timer


def _counted(engine: str, outcome: str) -> float:
    return float(TRANSCRIPTIONS.labels(engine, outcome)._value.get())


def _timed() -> float:
    """How many transcriptions the histogram has timed, over every engine."""
    samples = [s for family in TRANSCRIPTION_SECONDS.collect() for s in family.samples]
    return sum(s.value for s in samples if s.name.endswith("_count"))


def test_a_transcription_is_counted_by_outcome_and_timed() -> None:
    ok, error, timed = _counted("vosk", "ok"), _counted("vosk", "error"), _timed()
    with transcription_timer("vosk"):
        pass
    with pytest.raises(RuntimeError), transcription_timer("vosk"):
        raise RuntimeError("the model is missing")
    assert (_counted("vosk", "ok") - ok, _counted("vosk", "error") - error) == (1, 1)
    assert _timed() - timed == 2


def test_a_label_keeps_a_bounded_number_of_values() -> None:
    label = _LabelValues(limit=2)
    assert [label(v) for v in ("memory_recall", "help", "evil_1", "memory_recall", None)] == [
        "memory_recall",
        "help",
        "other",
        "memory_recall",
        "other",  # "unknown" would be a third value
    ]
    assert label("x" * 500) == "other" and len(_LabelValues()("x" * 500)) == 100
