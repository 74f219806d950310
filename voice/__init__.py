"""Speech in and out: streaming partials (Vosk), whole-utterance transcripts (faster-whisper), voice
activity detection, spoken-form normalisation, recognition bias, and spoken replies (Piper, espeak-ng).

Heavy engines are imported only when a model is first used; models are loaded once per process.
Never imports ``assistant``: the caller passes a ``VoiceConfig`` and the facts (names, templates) in.
"""

from voice.audio import SAMPLE_RATE, PcmResampler, Samples, check_rate, decode_file, resample, wav_bytes
from voice.bias import Bias, template_vocabulary
from voice.config import VoiceConfig
from voice.errors import AudioError, ModelNotFoundError, NoAudioDeviceError, VoiceError
from voice.listener import Listener
from voice.spoken import normalize_transcript
from voice.streaming import StreamingRecognizer, VoskStreamingRecognizer
from voice.transcriber import Transcriber, VoskTranscriber, WhisperTranscriber
from voice.transcript import Partial, Transcript, Word
from voice.tts import Speech, Synthesizer, create_synthesizer, speak_sentences, split_sentences
from voice.vad import Endpointer

__all__ = [
    "SAMPLE_RATE",
    "AudioError",
    "Bias",
    "Endpointer",
    "Listener",
    "ModelNotFoundError",
    "NoAudioDeviceError",
    "Partial",
    "PcmResampler",
    "Samples",
    "Speech",
    "StreamingRecognizer",
    "Synthesizer",
    "Transcriber",
    "Transcript",
    "VoiceConfig",
    "VoiceError",
    "VoskStreamingRecognizer",
    "VoskTranscriber",
    "WhisperTranscriber",
    "Word",
    "check_rate",
    "create_synthesizer",
    "decode_file",
    "normalize_transcript",
    "resample",
    "speak_sentences",
    "split_sentences",
    "template_vocabulary",
    "wav_bytes",
]
