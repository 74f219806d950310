"""What a running Kommandant tells its operators: Prometheus metrics and structured logs.

``telemetry.metrics`` holds the counters and histograms and the one-line hooks the turn, the workers and
speech call; ``telemetry.logs`` the log ids of the turn or call under way and the JSON log format. Every
package may import it (like ``settings``); it imports none of the project's packages.
"""

from __future__ import annotations

from telemetry.logs import bind_ids, current_ids, log_ids, new_id, setup_log_format
from telemetry.metrics import (
    call_served,
    observe_turn,
    tool_call_finished,
    transcription_timer,
)

__all__ = [
    "bind_ids",
    "call_served",
    "current_ids",
    "log_ids",
    "new_id",
    "observe_turn",
    "setup_log_format",
    "tool_call_finished",
    "transcription_timer",
]
