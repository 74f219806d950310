"""Whole-utterance recognition behind one small interface: ``Transcriber.transcribe(samples, bias)``.

Backends import their engine lazily and run blocking inference in a thread, so the event loop keeps
serving other people while one utterance is decoded.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from typing import Any, Protocol

import numpy as np

from voice import models
from voice.audio import SAMPLE_RATE, Samples, duration, to_pcm16
from voice.bias import Bias
from voice.config import VoiceConfig
from voice.transcript import Hypothesis, Transcript, Word

__all__ = ["Transcriber", "VoskTranscriber", "WhisperTranscriber"]


class Transcriber(Protocol):
    """A whole utterance (16 kHz mono float32) -> a transcript with word confidences."""

    name: str

    async def transcribe(self, samples: Samples, *, bias: Bias | None = None) -> Transcript:
        """Recognise ``samples``; an empty transcript when nothing was said."""
        ...


class WhisperTranscriber:
    """faster-whisper: int8 on CPU (CUDA when present), Silero VAD skipping silence, word timestamps."""

    name = "whisper"

    def __init__(self, config: VoiceConfig, *, language: str = "en") -> None:
        self.config = config
        self.language = language
        self.model = models.whisper_model(config)

    async def transcribe(self, samples: Samples, *, bias: Bias | None = None) -> Transcript:
        """Recognise ``samples`` in a worker thread."""
        return await asyncio.to_thread(self.transcribe_sync, samples, bias=bias)

    def transcribe_sync(self, samples: Samples, *, bias: Bias | None = None) -> Transcript:
        """Recognise ``samples`` here (blocking): for threads and benchmarks.

        A command (no word timings, at most one 30 s window of speech) is decoded once into Whisper's best
        readings (``Transcript.alternatives``); anything else by ``WhisperModel.transcribe``, segment by
        segment (words timed when ``config.word_timings``)."""
        started = time.perf_counter()
        prompt = bias.prompt() if bias is not None and self.config.bias else None
        if not self.config.word_timings:
            readings = best_readings(self.model, samples, self.config, self.language, prompt)
            if readings is not None:
                return Transcript(
                    text=readings[0].text if readings else "",
                    duration=duration(samples),
                    engine=self.name,
                    language=self.language,
                    timings={"transcribe": time.perf_counter() - started},
                    probability=readings[0].probability if readings else None,
                    alternatives=tuple(readings) if len(readings) > 1 else (),
                )
        segments, info = self.model.transcribe(
            samples,
            language=self.language,
            beam_size=self.config.whisper_beam_size,
            word_timestamps=self.config.word_timings,
            vad_filter=True,
            vad_parameters={"threshold": self.config.vad_threshold, "min_silence_duration_ms": 500},
            condition_on_previous_text=False,
            initial_prompt=prompt,
        )
        words: list[Word] = []
        texts: list[str] = []
        token_logprob = token_count = 0.0
        for segment in segments:
            texts.append(segment.text.strip())
            tokens = max(1, len(segment.tokens))
            token_logprob += segment.avg_logprob * tokens
            token_count += tokens
            words.extend(
                Word(w.word.strip(), float(w.start), float(w.end), float(w.probability))
                for w in segment.words or ()
                if w.word.strip()
            )
        words = trim_hallucinated_tail(words)
        text = " ".join(w.text for w in words) if words else " ".join(t for t in texts if t)
        return Transcript(
            text=text,
            words=tuple(words),
            duration=duration(samples),
            engine=self.name,
            language=info.language,
            timings={"transcribe": time.perf_counter() - started},
            probability=math.exp(token_logprob / token_count) if token_count else None,
        )

    def partial_sync(self, samples: Samples, *, bias: Bias | None = None) -> str:
        """A quick draft of ``samples`` while the person is still speaking (blocking): greedy decoding,
        no silence filter, no word timings, and a window just longer than the audio instead of Whisper's
        30 s (the encoder's cost grows with the window; measured here: 5 s windows took about half the
        time of 30 s ones, with the same words for a spoken command)."""
        prompt = bias.prompt() if bias is not None and self.config.bias else None
        window = min(
            30, DRAFT_WINDOW_STEP * math.ceil(max(len(samples), 1) / SAMPLE_RATE / DRAFT_WINDOW_STEP)
        )
        segments, _ = self.model.transcribe(
            samples,
            language=self.language,
            beam_size=1,
            without_timestamps=True,
            condition_on_previous_text=False,
            initial_prompt=prompt,
            chunk_length=window,
        )
        return " ".join(segment.text.strip() for segment in segments).strip()


WINDOW_SECONDS = 30
"""Whisper hears at most this much at once; longer speech is decoded segment by segment."""
BEST_READINGS = 5
"""Readings kept from one beam search (at most the beam size): the beams it ends with cost nothing more."""
NO_SPEECH = 0.6
LOW_LOG_PROB = -1.0
REPETITIVE = 2.4
"""faster-whisper's own thresholds: a window whose no-speech probability is above ``NO_SPEECH`` while its
reading's mean log-probability is below ``LOW_LOG_PROB`` is silence; a reading whose text compresses more
than ``REPETITIVE`` (gzip) is a loop ("stop the bot stop the bot …")."""


def best_readings(
    model: Any, samples: Samples, config: VoiceConfig, language: str, prompt: str | None
) -> list[Hypothesis] | None:
    """Whisper's best readings of one command, most likely first: the finished beams of one beam search
    over the speech (Silero VAD drops the silence, as ``transcribe`` does). ``[]`` for silence; None when
    the speech is longer than one window or every reading loops (then ``WhisperModel.transcribe``, with
    its segments and temperature fallback, decodes it).

    The same decoding as ``WhisperModel.transcribe`` for one window (timestamps on, the prompt as its
    previous text, the last feature frame dropped), asking ctranslate2 for all beams instead of one.
    """
    from faster_whisper.audio import pad_or_trim
    from faster_whisper.tokenizer import Tokenizer
    from faster_whisper.transcribe import get_compression_ratio, get_suppressed_tokens
    from faster_whisper.vad import VadOptions, collect_chunks, get_speech_timestamps

    chunks = get_speech_timestamps(
        samples, VadOptions(threshold=config.vad_threshold, min_silence_duration_ms=500)
    )
    if not chunks:
        return []
    speech = np.concatenate(collect_chunks(samples, chunks)[0])
    if len(speech) > WINDOW_SECONDS * SAMPLE_RATE:
        return None
    features = model.feature_extractor(speech)[:, :-1]
    encoded = model.encode(pad_or_trim(features))
    tokenizer = Tokenizer(
        model.hf_tokenizer, model.model.is_multilingual, task="transcribe", language=language
    )
    previous = tokenizer.encode(" " + prompt.strip()) if prompt else []
    beams = max(1, config.whisper_beam_size)
    result = model.model.generate(
        encoded,
        [model.get_prompt(tokenizer, previous, without_timestamps=False)],
        beam_size=beams,
        num_hypotheses=min(BEST_READINGS, beams),
        return_scores=True,
        return_no_speech_prob=True,
        suppress_blank=True,
        suppress_tokens=get_suppressed_tokens(tokenizer, [-1]),
        max_length=model.max_length,
        max_initial_timestamp_index=50,
    )[0]
    readings: list[Hypothesis] = []
    for tokens, score in zip(result.sequences_ids, result.scores, strict=True):
        # ctranslate2 scores a beam by its summed log-probability over its length; faster-whisper's mean
        # counts the end token too
        log_prob = score * len(tokens) / (len(tokens) + 1)
        text = tokenizer.decode([t for t in tokens if t < tokenizer.timestamp_begin]).strip()
        if text and get_compression_ratio(text) <= REPETITIVE:
            readings.append(Hypothesis(text, math.exp(log_prob)))
    if not readings:
        return None
    if result.no_speech_prob > NO_SPEECH and math.log(readings[0].probability) < LOW_LOG_PROB:
        return []
    return readings


class VoskTranscriber:
    """Vosk on a whole utterance (for ``KOMMANDANT_STT=vosk``); with a bias, in command mode (a grammar)."""

    name = "vosk"

    def __init__(self, config: VoiceConfig) -> None:
        self.config = config
        self.model = models.vosk_model(config)

    async def transcribe(self, samples: Samples, *, bias: Bias | None = None) -> Transcript:
        """Recognise ``samples`` in a worker thread."""
        return await asyncio.to_thread(self.transcribe_sync, samples, bias=bias)

    def transcribe_sync(self, samples: Samples, *, bias: Bias | None = None) -> Transcript:
        """Recognise ``samples`` here (blocking)."""
        started = time.perf_counter()
        recognizer = new_vosk_recognizer(self.model, bias if self.config.bias else None)
        data = to_pcm16(samples)
        step = SAMPLE_RATE  # one second of PCM16 per call
        for offset in range(0, len(data), step * 2):
            recognizer.AcceptWaveform(data[offset : offset + step * 2])
        result = json.loads(recognizer.FinalResult())
        return vosk_transcript(result, duration(samples), time.perf_counter() - started)


DRAFT_WINDOW_STEP = 5
"""Seconds: a draft's window is the audio's length rounded up to a multiple of this."""
TAIL_FIRST_WORD_BELOW = 0.2
SENTENCE_END = (".", "?", "!")
STOCK_ENDINGS = frozenset(
    {"you", "thank you", "thanks", "thank you very much", "thank you so much", "thanks for watching",
     "thank you for watching", "that's it", "that's all", "bye", "bye bye", "see you next time",
     "i'll see you next time", "see you", "please subscribe", "okay", "so", "that's"}
)  # fmt: skip
"""Subtitle endings Whisper adds after a finished sentence; a command never ends with one of them."""


def trim_hallucinated_tail(words: list[Word]) -> list[Word]:
    """Drop what Whisper invents after the speech ended ("… bot. Thank you for watching.").

    Whisper was trained on subtitles and pads silence with their stock endings; such a tail follows a
    finished sentence and either starts with a word the model itself found very unlikely or is cut off
    (no closing punctuation: "… ten minutes. It's").
    """
    while True:
        ends = [i for i, w in enumerate(words[:-1]) if w.text.endswith(SENTENCE_END)]
        if not ends:
            return words
        tail = words[ends[-1] + 1 :]
        stock = " ".join(w.text for w in tail).lower().strip(" .!?,") in STOCK_ENDINGS
        if (
            not stock
            and tail[0].probability >= TAIL_FIRST_WORD_BELOW
            and tail[-1].text.endswith(SENTENCE_END)
        ):
            return words
        words = words[: ends[-1] + 1]


def new_vosk_recognizer(model: Any, bias: Bias | None) -> Any:
    """A ``vosk.KaldiRecognizer`` with word results; restricted to the bias grammar when given one."""
    import vosk

    if bias is not None:
        recognizer = vosk.KaldiRecognizer(model, SAMPLE_RATE, json.dumps(bias.grammar()))
    else:
        recognizer = vosk.KaldiRecognizer(model, SAMPLE_RATE)
    recognizer.SetWords(True)
    return recognizer


def vosk_transcript(result: dict[str, Any], seconds: float, elapsed: float) -> Transcript:
    """A ``Transcript`` from Vosk's JSON result (words with ``conf``, ``start``, ``end``)."""
    words = tuple(
        Word(str(w["word"]), float(w["start"]), float(w["end"]), float(w.get("conf", 1.0)))
        for w in result.get("result", [])
        if w.get("word") and w.get("word") != "[unk]"
    )
    text = (
        " ".join(w.text for w in words) if words else str(result.get("text", "")).replace("[unk]", "").strip()
    )
    return Transcript(
        text=text, words=words, duration=seconds, engine="vosk", timings={"transcribe": elapsed}
    )


def silence(seconds: float) -> Samples:
    """``seconds`` of digital silence (padding, tests)."""
    return np.zeros(int(seconds * SAMPLE_RATE), dtype=np.float32)
