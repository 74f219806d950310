"""The voice package's errors: each carries one sentence a person can act on (the log keeps the rest)."""

from __future__ import annotations

__all__ = ["AudioError", "ModelNotFoundError", "NoAudioDeviceError", "VoiceError"]


class VoiceError(Exception):
    """Base of every voice error; ``str(err)`` is a clear sentence for a person."""


class AudioError(VoiceError):
    """The audio could not be used: corrupt, unsupported, empty, too long, or at an unusable rate."""


class ModelNotFoundError(VoiceError):
    """A speech model is not where the settings say; the message names the setting and how to get one."""

    def __init__(self, setting: str, message: str) -> None:
        super().__init__(message)
        self.setting = setting


class NoAudioDeviceError(VoiceError):
    """No microphone or speaker could be opened."""
