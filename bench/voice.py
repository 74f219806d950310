"""Voice turn latency, accuracy and memory over the spoken-command set, beside bare faster-whisper.

python bench/voice.py        # prints JSON; needs the test models (see tests/voice/conftest.py)

For every spoken command (Piper joe voice), in one process and one run:
- ``bare``: ``WhisperModel.transcribe`` of the clip (same model, language and beam size; no VAD, no word
  timestamps): the floor for this model on this machine;
- ``pipeline``: end of speech -> tool result through the whole voice turn (decode, VAD, biased Whisper
  with word timestamps, normalisation, intents, policy, bus, agent, Postgres audit);
- word error rate of the transcripts with and without the bias (live names as the prompt), and with the
  names in sentences as the prompt (the alternative that was measured and rejected);
- real-time factor, and peak RSS of the process (before and after the voice models were loaded); the
  clips are synthesised in a child process, so the speech synthesiser is not counted.
"""

from __future__ import annotations

import asyncio
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# bench/ itself must not be on the path: bench/voice.py and bench/mcp.py would shadow the packages.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _current_rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        pages = int(handle.read().split()[1])
    return round(pages * resource.getpagesize() / 2**20, 1)


def _words(text: str) -> list[str]:
    from intents import normalize
    from voice import normalize_transcript

    return list(normalize(normalize_transcript(text)).words)


def word_errors(reference: str, hypothesis: str) -> tuple[int, int]:
    """(edit distance in words, reference length), after the same normalisation the parser applies."""
    ref, hyp = _words(reference), _words(hypothesis)
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        previous, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (r != h))
    return row[-1], len(ref)


def _summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 1),
        "p90_ms": round(ordered[int(len(ordered) * 0.9)] * 1000, 1),
        "mean_ms": round(statistics.fmean(ordered) * 1000, 1),
    }


async def _run(work: Path) -> dict[str, Any]:
    from agents import BUILTIN_AGENTS
    from assistant.events import ApprovalRequired, ReplyDone, ToolFinished
    from assistant.runtime import Runtime
    from assistant.speech import VoiceTurns
    from settings import Settings
    from storage import Database
    from storage.embedded import stop_embedded
    from tests.voice.conftest import COMMANDS, add_names, assemble_whisper
    from voice import Bias, decode_file

    whisper_dir = assemble_whisper(work / "whisper-base")
    clips = [(text, decode_file(work / f"piper-{index:02d}.wav")) for index, text in enumerate(COMMANDS)]
    data_dir = work / "pgdata"
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, data_dir=work, amqp_url=None, whisper_model=str(whisper_dir), llm_model=""
    )
    try:
        async with Database(data_dir=data_dir) as database:
            await add_names(database)
            async with Runtime(settings, agents=list(BUILTIN_AGENTS), database=database) as rt:
                rss_before = _current_rss_mb()
                voice = VoiceTurns(settings, rt.kommandant)
                transcriber: Any = await voice.transcriber()
                model = transcriber.model
                beam = settings.whisper_beam_size
                # the prompt style measured and rejected: names in sentences (see voice.bias.Bias)
                sentences = Bias(names=("Bots: backup, crawler, mailer. Schedules: backup.",))
                for _, samples in clips[:2]:  # warm-up
                    list(model.transcribe(samples, language="en", beam_size=beam)[0])
                    [
                        e
                        async for e in voice.handle_audio(
                            samples, user="local", role="admin", channel="bench"
                        )
                    ]
                bare, pipeline, seconds = [], [], []
                errors = {"biased": [0, 0], "unbiased": [0, 0], "sentence_prompt": [0, 0]}
                for index, (text, samples) in enumerate(clips):
                    started = time.perf_counter()
                    list(model.transcribe(samples, language="en", beam_size=beam)[0])
                    bare.append(time.perf_counter() - started)
                    seconds.append(len(samples) / 16_000)
                    started = time.perf_counter()
                    heard = ""
                    async for event in voice.handle_audio(
                        samples, user="local", role="admin", channel="bench", thread=f"b{index}"
                    ):
                        if hasattr(event, "transcript"):
                            heard = event.transcript.text  # type: ignore[union-attr]
                        if isinstance(event, ApprovalRequired):
                            await rt.kommandant.decide(  # type: ignore[union-attr]
                                event.approval_id,
                                approve=False,
                                user="local",
                                role="admin",
                                channel="bench",
                                thread=f"b{index}",
                            )
                        if isinstance(event, ToolFinished | ReplyDone):
                            pipeline.append(time.perf_counter() - started)
                            break
                    for key, prompt_bias in (
                        ("biased", None),
                        ("unbiased", False),
                        ("sentence_prompt", sentences),
                    ):
                        if key == "biased":
                            hypothesis = heard
                        else:
                            hypothesis = transcriber.transcribe_sync(
                                samples, bias=prompt_bias if prompt_bias is not False else None
                            ).text
                        wrong, total = word_errors(text, hypothesis)
                        errors[key][0] += wrong
                        errors[key][1] += total
                ratios = [p / b for p, b in zip(pipeline, bare, strict=True)]
                slowest = sorted(zip(pipeline, bare, (t for t, _ in clips), strict=True), reverse=True)[:5]
                return {
                    "clips": len(clips),
                    "audio_seconds": round(sum(seconds), 2),
                    "bare_whisper_transcribe": _summary(bare),
                    "pipeline_end_of_speech_to_tool_result": _summary(pipeline),
                    "overhead_p50": round(statistics.median(pipeline) / statistics.median(bare) - 1, 3),
                    "overhead_per_clip_p50": round(statistics.median(ratios) - 1, 3),
                    "slowest_pipeline_ms": [
                        {"command": text, "pipeline": round(p * 1000), "bare": round(b * 1000)}
                        for p, b, text in slowest
                    ],
                    "target_overhead_p50": 0.15,
                    "vad_silence_wait_ms_live_only": settings.vad_silence_ms,
                    "wer": {k: round(w / max(n, 1), 4) for k, (w, n) in errors.items()},
                    "target_wer_piper": 0.06,
                    "real_time_factor": {
                        "bare": round(sum(bare) / sum(seconds), 3),
                        "pipeline": round(sum(pipeline) / sum(seconds), 3),
                    },
                    "rss_mb": {
                        "runtime_before_voice": rss_before,
                        "after_voice_turns": _current_rss_mb(),
                        "peak": _peak_rss_mb(),
                    },
                    "target_peak_rss_mb": 800,
                    "threads": settings.stt_threads or "one per core",
                    "beam_size": beam,
                }
    finally:
        await stop_embedded(data_dir)


def synthesize(work: Path) -> None:
    """Speak every command with the Piper joe voice into ``work`` (run in a child process)."""
    from tests.voice.conftest import COMMANDS, synthesize_piper

    for index, text in enumerate(COMMANDS):
        synthesize_piper(text, work / f"piper-{index:02d}.wav")


def main() -> None:
    import logging

    if sys.argv[1:2] == ["--synthesize"]:
        synthesize(Path(sys.argv[2]))
        return

    logging.disable(logging.WARNING)
    work = Path(tempfile.mkdtemp(prefix="kommandant-bench-voice-"))
    try:
        # The clips are spoken by Piper in a child process, so its voice model is not counted in this
        # process's memory: the peak RSS reported is that of the voice turns alone.
        subprocess.run([sys.executable, __file__, "--synthesize", str(work)], check=True)
        result = asyncio.run(_run(work))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps({"voice": result}, indent=2))


if __name__ == "__main__":
    main()
