"""Audio in and the pure parts: decoding, resampling, rates, VAD endpointing, normalisation, bias."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.voice.conftest import Clip
from voice import (
    AudioError,
    Bias,
    Endpointer,
    PcmResampler,
    check_rate,
    decode_file,
    normalize_transcript,
    resample,
    split_sentences,
    template_vocabulary,
    wav_bytes,
)
from voice.audio import to_pcm16


def test_spoken_forms_become_typed_forms() -> None:
    assert normalize_transcript("Stop the web dash crawler bot.") == "Stop the web-crawler bot."
    assert normalize_transcript("Remind me at 5 p .m. tomorrow") == "Remind me at 5 p.m. tomorrow"
    assert (
        normalize_transcript("Um, remind me at 9.30 p.m. to call mom") == "remind me at 9:30 p.m. to call mom"
    )
    assert normalize_transcript("search the wiki for example dot com") == "search the wiki for example.com"
    assert normalize_transcript("You know, start the backup bot") == "start the backup bot"
    assert normalize_transcript("[BLANK_AUDIO]") == ""
    assert normalize_transcript("version 2.5 of the docs") == "version 2.5 of the docs"


def test_bias_prompt_names_and_grammar() -> None:
    from intents import load_templates

    vocabulary = template_vocabulary(load_templates())
    assert "remind" in vocabulary and "bot" in vocabulary and "the" not in vocabulary
    bias = Bias(names=("web-crawler", "nightly", "web-crawler", " "), vocabulary=vocabulary)
    assert bias.prompt() == "web-crawler, nightly"
    grammar = bias.grammar()
    assert grammar[-1] == "[unk]" and {"web", "crawler", "nightly", "remind", "the"} <= set(grammar)
    assert Bias().prompt() is None


def test_sentences_split_for_speaking() -> None:
    assert split_sentences("Started **backup**. It runs now!\nNext: `logs`") == [
        "Started backup.",
        "It runs now!",
        "Next: logs",
    ]
    long = split_sentences("word " * 1000)
    assert long[-1].endswith("The rest is on screen.")


@pytest.mark.parametrize("rate", [0, 3000, 7999, 500_000])
def test_unusable_sample_rates_get_a_clear_error(rate: int) -> None:
    with pytest.raises(AudioError, match=f"{rate} Hz"):
        check_rate(rate)
    with pytest.raises(AudioError, match="sample rate"):
        PcmResampler(rate)


def test_odd_pcm_is_refused() -> None:
    with pytest.raises(AudioError, match="even number of bytes"):
        PcmResampler(24_000).feed(b"\x00\x01\x02")


def test_streamed_resampling_matches_whole_resampling() -> None:
    t = np.arange(24_000 * 2) / 24_000
    tone = (0.4 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    resampler = PcmResampler(24_000)
    pieces = [resampler.feed(to_pcm16(tone[i : i + 1234])) for i in range(0, len(tone), 1234)]
    streamed = np.concatenate([*pieces, resampler.flush()])
    whole = resample(tone, 24_000)
    assert abs(len(streamed) - 32_000) <= 32 and abs(len(whole) - 32_000) <= 32
    # 440 Hz survives: the dominant frequency of the 16 kHz signal
    spectrum = np.abs(np.fft.rfft(streamed[:16_000]))
    assert abs(int(np.argmax(spectrum)) - 440) <= 2


def test_missing_empty_and_corrupt_files(tmp_path: Path) -> None:
    with pytest.raises(AudioError, match="no such audio file"):
        decode_file(tmp_path / "nope.wav")
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(AudioError, match="empty"):
        decode_file(empty)
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(range(256)) * 8)
    with pytest.raises(AudioError, match=r"corrupt\.wav: not an audio file"):
        decode_file(corrupt)
    text = tmp_path / "notes.mp3"
    text.write_text("this is not audio at all\n" * 50)
    with pytest.raises(AudioError, match=r"notes\.mp3"):
        decode_file(text)


def encode(samples: np.ndarray, path: Path, codec: str) -> None:
    """Write ``samples`` (16 kHz) with an audio codec, through PyAV."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=16_000)
        stream.layout = "mono"  # type: ignore[union-attr]
        frame = av.AudioFrame.from_ndarray(
            (np.clip(samples, -1, 1) * 32767).astype(np.int16)[None], format="s16", layout="mono"
        )
        frame.sample_rate = 16_000
        for packet in [*stream.encode(frame), *stream.encode(None)]:  # type: ignore[union-attr]
            container.mux(packet)


@pytest.mark.parametrize(("suffix", "codec"), [("flac", "flac"), ("ogg", "opus"), ("mp3", "mp3")])
def test_other_formats_decode_like_wav(
    clips: dict[str, list[Clip]], tmp_path: Path, suffix: str, codec: str
) -> None:
    clip = clips["piper"][0]
    reference = decode_file(clip.path)
    other = tmp_path / f"clip.{suffix}"
    if codec == "opus":
        subprocess.run(["sox", str(clip.path), str(other)], check=True, capture_output=True)
    else:
        encode(reference, other, codec)
    converted = decode_file(other)
    assert abs(len(converted) - len(reference)) < 16_000 * 0.1  # mp3 pads a few frames


def test_vad_ends_an_utterance_after_the_configured_silence(clips: dict[str, list[Clip]]) -> None:
    speech = decode_file(clips["piper"][4].path)
    pause = np.zeros(16_000 * 2, dtype=np.float32)
    short = Endpointer(silence_ms=300)
    long = Endpointer(silence_ms=1500)
    ended_short = ended_long = None
    audio = np.concatenate([pause[:8000], speech, pause])
    for start in range(0, len(audio), 1600):
        chunk = audio[start : start + 1600]
        if short.feed(chunk) and ended_short is None:
            ended_short = (start + len(chunk)) / 16_000
        if long.feed(chunk) and ended_long is None:
            ended_long = (start + len(chunk)) / 16_000
    speech_end = 0.5 + len(speech) / 16_000
    assert short.speech and ended_short is not None and ended_long is not None
    assert ended_short < ended_long
    assert ended_long - ended_short == pytest.approx(1.2, abs=0.35)
    assert speech_end - 0.5 < ended_short < speech_end + 1.0


def test_silence_and_noise_never_end_as_speech() -> None:
    rng = np.random.default_rng(7)
    for audio in (np.zeros(16_000 * 3, dtype=np.float32), (rng.normal(0, 0.05, 48_000)).astype(np.float32)):
        endpointer = Endpointer()
        assert not endpointer.feed(audio) and not endpointer.speech


def test_wav_round_trip(tmp_path: Path) -> None:
    tone = (0.3 * np.sin(np.arange(8000) / 5)).astype(np.float32)
    path = tmp_path / "tone.wav"
    path.write_bytes(wav_bytes(tone))
    back = decode_file(path)
    assert len(back) == len(tone) and np.max(np.abs(back - tone)) < 1e-3


def test_confidence_without_word_timings_is_the_text_probability() -> None:
    from voice import Transcript, Word

    assert Transcript("stop the bot", probability=0.8).confidence == 0.8
    assert Transcript("", probability=0.8).confidence is None
    words = (Word("stop", 0, 0.2, 0.9), Word("it", 0.2, 0.3, 0.5))
    assert Transcript("stop it", words=words, probability=0.1).confidence == pytest.approx(0.7)
