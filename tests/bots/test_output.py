"""Log capture without processes: lines cut from chunks, long lines cut, secrets masked, files rotated,
tails read back. The supervisor tests run the same code on real bots."""

from __future__ import annotations

import asyncio
from pathlib import Path

from agents.bots.output import CUT_MARKER, LINE_CAP, BotOutput, LineSplitter, RotatingFile, tail_files


def feed_all(splitter: LineSplitter, chunks: list[bytes]) -> list[str]:
    lines = [line for chunk in chunks for line in splitter.feed(chunk)]
    return lines + splitter.end()


def test_lines_come_out_whole_whatever_the_chunks() -> None:
    text = "first\nsecond line\nthird é ü\n\nlast without newline".encode()
    for size in (1, 2, 3, 7, len(text)):
        chunks = [text[i : i + size] for i in range(0, len(text), size)]
        assert feed_all(LineSplitter(), chunks) == [
            "first", "second line", "third é ü", "", "last without newline"
        ]  # fmt: skip


def test_bad_utf8_is_replaced_not_fatal() -> None:
    assert feed_all(LineSplitter(), [b"ok \xff\xfe end\n"]) == ["ok \ufffd\ufffd end"]


def test_a_long_line_is_cut_with_a_marker_and_the_rest_dropped() -> None:
    splitter = LineSplitter(cap=100)
    lines = splitter.feed(b"a" * 150)
    assert lines == ["a" * 100 + CUT_MARKER]  # shown as soon as it is cut, not at its newline
    assert splitter.feed(b"b" * 10_000) == []  # the rest of that line costs nothing
    assert splitter.feed(b"bbb\nnext\n") == ["next"]
    complete = LineSplitter(cap=100).feed(b"c" * 300 + b"\nshort\n")
    assert complete == ["c" * 100 + CUT_MARKER, "short"]


def test_fifty_megabytes_without_a_newline_stay_one_cut_line() -> None:
    splitter = LineSplitter()
    chunk = b"x" * 65536
    lines: list[str] = []
    for _ in range(50 * 16):
        lines += splitter.feed(chunk)
    assert lines == ["x" * LINE_CAP + CUT_MARKER]
    assert len(splitter._partial) == 0


def test_secrets_are_masked_across_chunks_and_at_a_cut() -> None:
    secret = "hunter2-token"
    text = f"token={secret} and again {secret}\n".encode()
    chunks = [text[i : i + 5] for i in range(0, len(text), 5)]
    assert feed_all(LineSplitter([secret]), chunks) == ["token=*** and again ***"]
    # A secret straddling the cap is masked before the line is cut: no prefix of it survives.
    cut = LineSplitter([secret], cap=20).feed(b"x" * 15 + secret.encode() + b"y" * 30)
    assert cut == ["x" * 15 + "***yy" + CUT_MARKER]
    assert "hunt" not in cut[0]
    # The longer of two overlapping secrets goes first.
    assert feed_all(LineSplitter(["abc", "abcdef"]), [b"abcdef abc\n"]) == ["*** ***"]
    assert feed_all(LineSplitter([""]), [b"empty secrets are ignored\n"]) == ["empty secrets are ignored"]


def test_rotation_keeps_the_backups_asked_for(tmp_path: Path) -> None:
    file = RotatingFile(tmp_path / "bot.log", max_bytes=100, backups=2)
    for n in range(10):
        file.append(f"{n:02d}".encode() * 20 + b"\n")  # 41 bytes: two per file
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["bot.log", "bot.log.1", "bot.log.2"]
    lines, older = tail_files(file.files(), 100)
    assert [line[:2] for line in lines] == ["04", "05", "06", "07", "08", "09"]
    assert older is False  # 00-03 were rotated away: nothing older is left to show
    lines, older = tail_files(file.files(), 3)
    assert [line[:2] for line in lines] == ["07", "08", "09"] and older is True


def test_one_big_batch_is_spread_over_files_by_whole_lines(tmp_path: Path) -> None:
    file = RotatingFile(tmp_path / "bot.log", max_bytes=100, backups=5)
    file.append(b"".join(f"{n:02d}".encode() * 20 + b"\n" for n in range(10)))
    assert all(0 < path.stat().st_size <= 100 for path in file.files() if path.exists())
    assert tail_files(file.files(), 100) == ([f"{n:02d}" * 20 for n in range(10)], False)
    file.append(b"y" * 250 + b"\n")  # a line longer than a file gets a file of its own
    assert (tmp_path / "bot.log").read_bytes() == b"y" * 250 + b"\n"


def test_tail_reads_long_files_backwards(tmp_path: Path) -> None:
    path = tmp_path / "big.log"
    path.write_bytes(b"".join(f"line {n}\n".encode() for n in range(100_000)))
    lines, older = tail_files([path], 3)
    assert lines == ["line 99997", "line 99998", "line 99999"] and older
    assert tail_files([tmp_path / "missing.log"], 5) == ([], False)
    (tmp_path / "one.log").write_bytes(b"only\n")
    assert tail_files([tmp_path / "one.log"], 5) == (["only"], False)


async def test_bot_output_keeps_a_bounded_tail_and_writes_everything(tmp_path: Path) -> None:
    output = BotOutput(tmp_path / "b.log", lines=5)
    output.secrets = ("s3cret",)
    out, err = asyncio.StreamReader(), asyncio.StreamReader()
    out.feed_data(b"".join(f"out {n} s3cret\n".encode() for n in range(1000)))
    out.feed_eof()
    err.feed_data(b"oops\npartial")
    err.feed_eof()
    await asyncio.gather(output.pump(out), output.pump(err, stderr=True))
    lines, older = output.tail(3)
    assert older and len(lines) == 3
    assert output.tail(100)[0][-2:] in (["[stderr] oops", "[stderr] partial"], ["out 998 ***", "out 999 ***"])
    await output.close()
    written = (tmp_path / "b.log").read_text().splitlines()
    assert len(written) == 1002
    assert "out 0 ***" in written and "[stderr] partial" in written
    assert "s3cret" not in (tmp_path / "b.log").read_text()
