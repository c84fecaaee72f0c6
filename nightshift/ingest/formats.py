"""Streaming readers for client files: JSONL (plain or gzip), CSV (plain or gzip) and Parquet.

Each yields chunks of SourceRow, never the whole file, with how far through the file it is.
A problem with the file as a whole (empty, truncated, unreadable) arrives as a row of its own,
after every good row before it.
"""

from __future__ import annotations

import csv
import gzip
import io
import zlib
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal, cast

import orjson

from nightshift.platform.bounds import clean_text
from nightshift.platform.errors import SourceError

Format = Literal["jsonl", "csv", "parquet"]
FORMATS: tuple[Format, ...] = ("jsonl", "csv", "parquet")
SUFFIXES: dict[str, Format] = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
}
# Keeps a quarantine row readable and bounded, whatever the client sent.
MAX_RAW = 10_000
# A single line or field beyond this is refused without holding it all in memory twice.
MAX_LINE_BYTES = 16 * 1024 * 1024


# Not frozen: a frozen dataclass sets each field through object.__setattr__, and a million rows
# pay for that; slots keep each row small.
@dataclass(slots=True)
class SourceRow:
    line_number: int
    raw: str
    data: dict[str, Any] | None = None
    error: str | None = None
    # CSV carries every value as text: typed fields are coerced during validation.
    textual: bool = False
    file_level: bool = False

    @property
    def text(self) -> str:
        """What to keep in quarantine: the raw line, or the parsed object written back; always
        storable (a NUL or lone surrogate replaced), whatever the row held."""
        if self.raw or self.data is None:
            return clean_text(self.raw[:MAX_RAW])
        try:
            written = orjson.dumps(self.data, default=str).decode()
        except (orjson.JSONEncodeError, TypeError):
            return "(not shown: the row cannot be written back as JSON)"
        return clean_text(written[:MAX_RAW])


def detect_format(path: Path, override: str | None = None) -> tuple[Format, bool]:
    """(format, gzip-compressed) from the name, or the override."""
    name = path.name.lower()
    compressed = name.endswith(".gz")
    if compressed:
        name = name[:-3]
    if override:
        if override not in FORMATS:
            raise SourceError(f"unknown format {override!r}: use one of {', '.join(FORMATS)}")
        return override, compressed
    suffix = Path(name).suffix
    if suffix not in SUFFIXES:
        raise SourceError(f"cannot tell the format of {path.name}: name it .jsonl, .csv or .parquet, or pass --format")
    return SUFFIXES[suffix], compressed


def read_chunks(path: Path, fmt: Format, compressed: bool, chunk_rows: int) -> Iterator[tuple[list[SourceRow], float]]:
    """Chunks of rows and the share of the file read so far (0..1)."""
    size = max(1, path.stat().st_size)
    with path.open("rb") as raw:
        if fmt == "parquet":
            yield from _parquet(raw, chunk_rows)
            return
        stream = cast(IO[bytes], gzip.GzipFile(fileobj=raw, mode="rb")) if compressed else raw
        rows = _jsonl(stream) if fmt == "jsonl" else _csv(stream)
        chunk: list[SourceRow] = []
        for row in rows:
            chunk.append(row)
            if len(chunk) >= chunk_rows:
                yield chunk, min(1.0, raw.tell() / size)
                chunk = []
        yield chunk, 1.0


def _guarded(stream: IO[bytes], lines: Iterator[bytes]) -> Iterator[bytes | SourceRow]:
    """Lines of a possibly compressed stream; a broken stream ends with a file-level row."""
    count = 0
    try:
        for line in lines:
            count += 1
            yield line
    except (EOFError, gzip.BadGzipFile, zlib.error, OSError) as exc:
        reason = (
            f"truncated gzip: the file ends early after line {count}"
            if isinstance(exc, EOFError)
            else f"unreadable compressed data after line {count}: {exc}"
        )
        yield SourceRow(count + 1, "", error=reason, file_level=True)
        return
    if count == 0:
        yield SourceRow(0, "", error="empty file: no rows", file_level=True)


class _Overlong(bytes):
    """The start of a line longer than MAX_LINE_BYTES, whose rest was skipped."""


BLOCK_BYTES = 1 << 20


def _split_lines(stream: IO[bytes]) -> Iterator[bytes]:
    """Lines without their ending, cut from blocks: far faster than a readline call per line.

    read1 makes at most one read of the underlying stream, so a truncated gzip loses no more
    than a readline loop would. A line beyond MAX_LINE_BYTES comes as _Overlong, not kept whole.
    """
    pending = b""
    skipping = False
    read1 = getattr(stream, "read1", stream.read)
    for block in iter(lambda: read1(BLOCK_BYTES), b""):
        if skipping:
            cut = block.find(b"\n")
            if cut < 0:
                continue
            block, skipping = block[cut + 1 :], False
        lines = (pending + block if pending else block).split(b"\n")
        pending = lines.pop()
        for line in lines:
            yield _Overlong(line[:MAX_RAW]) if len(line) > MAX_LINE_BYTES else line
        if len(pending) > MAX_LINE_BYTES:
            yield _Overlong(pending[:MAX_RAW])
            pending, skipping = b"", True
    if pending:
        yield pending


BOM = b"\xef\xbb\xbf"


def _jsonl(stream: IO[bytes]) -> Iterator[SourceRow]:
    number = 0
    for line in _guarded(stream, _split_lines(stream)):
        if isinstance(line, SourceRow):
            yield line
            return
        number += 1
        if number == 1 and not isinstance(line, _Overlong) and line.startswith(BOM):
            # Editors on Windows start UTF-8 files with a byte-order mark: not part of the data.
            line = line[len(BOM) :]
        if isinstance(line, _Overlong):
            yield SourceRow(number, line.decode("utf-8", "replace"), error="line longer than 16 MB")
            continue
        if not line.strip():
            continue
        try:
            data = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            shown = line[:MAX_RAW].decode("utf-8", "replace").rstrip("\r")
            reason = "not valid UTF-8" if "UTF-8" in exc.msg else f"not valid JSON: {exc.msg} at column {exc.colno}"
            yield SourceRow(number, shown, error=reason)
            continue
        if not isinstance(data, dict):
            shown = line[:MAX_RAW].decode("utf-8", "replace").rstrip("\r")
            yield SourceRow(number, shown, error=f"expected a JSON object, got {_json_kind(data)}")
            continue
        # The raw text of a good row is rebuilt only if it is refused later (see SourceRow.text).
        yield SourceRow(number, "", data)


def _json_kind(value: object) -> str:
    return {list: "an array", str: "a string", int: "a number", float: "a number", bool: "true or false"}.get(
        type(value), "null"
    )


class _PhysicalLines:
    """Feeds csv one physical line at a time, remembering which lines made the current record,
    and lets lines be pushed back to be parsed again."""

    def __init__(self, text: IO[str]) -> None:
        self._text = text
        self._number = 0
        self.pending: deque[tuple[int, str]] = deque()
        self.taken: list[tuple[int, str]] = []
        # The file's end was reached: a record read since may have been cut there.
        self.exhausted = False

    def __iter__(self) -> _PhysicalLines:
        return self

    def __next__(self) -> str:
        if self.pending:
            entry = self.pending.popleft()
        else:
            line = self._text.readline(MAX_LINE_BYTES)
            if not line:
                self.exhausted = True
                raise StopIteration
            self._number += 1
            entry = (self._number, line)
        self.taken.append(entry)
        return entry[1]

    def take(self) -> list[tuple[int, str]]:
        taken, self.taken = self.taken, []
        return taken


def _csv(stream: IO[bytes]) -> Iterator[SourceRow]:
    # utf-8-sig: a byte-order mark at the start is read as one, not as part of the first header.
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="replace", newline="")
    lines = _PhysicalLines(text)
    header: list[str] | None = None
    rows = 0
    last_line = 0
    try:
        while True:
            try:
                fields = next(csv.reader(lines))
            except StopIteration:
                break
            except csv.Error as exc:
                taken = lines.take()
                yield SourceRow(taken[0][0] if taken else last_line + 1, "", error=f"not valid CSV: {exc}")
                lines.pending.extendleft(reversed(taken[1:]))
                continue
            taken = lines.take()
            first, last_line = taken[0][0], taken[-1][0]
            if header is None:
                header = [h.strip() for h in fields]
                if not any(header):
                    yield SourceRow(first, "", error="the header row is empty", file_level=True)
                    return
                continue
            if not any(f.strip() for f in fields):
                continue
            if len(taken) > 1 and (len(fields) != len(header) or (lines.exhausted and _cut_by_the_end(taken))):
                # An unterminated quote swallowed the lines after it: refuse its line, re-read the
                # rest. Its field may even end with the header's count of fields, at the file's end.
                yield SourceRow(
                    first,
                    taken[0][1].rstrip("\r\n")[:MAX_RAW],
                    error="unterminated quoted field: this line is refused, the next lines are read again",
                )
                rows += 1
                lines.pending.extendleft(reversed(taken[1:]))
                continue
            rows += 1
            raw = _csv_line(fields)
            if any("\ufffd" in f for f in fields):
                yield SourceRow(first, raw, error="not valid UTF-8")
            elif len(fields) != len(header):
                yield SourceRow(first, raw, error=f"row has {len(fields)} fields, the header has {len(header)}")
            else:
                data = {k: (v if v != "" else None) for k, v in zip(header, fields, strict=True)}
                yield SourceRow(first, raw, data, textual=True)
    except (EOFError, gzip.BadGzipFile, zlib.error, OSError) as exc:
        reason = "truncated gzip: the file ends early" if isinstance(exc, EOFError) else f"unreadable data: {exc}"
        yield SourceRow(last_line + 1, "", error=f"{reason} after line {last_line}", file_level=True)
        return
    if header is None:
        yield SourceRow(0, "", error="empty file: no rows", file_level=True)
    elif rows == 0:
        yield SourceRow(1, "", error="no data rows after the header", file_level=True)


def _cut_by_the_end(taken: list[tuple[int, str]]) -> bool:
    """The record's quoted field was still open at the end of the file: the lenient reader ends
    the field there, where a strict one says so."""
    try:
        next(csv.reader((line for _, line in taken), strict=True), None)
    except csv.Error as exc:
        return "unexpected end of data" in str(exc)
    return False


def _csv_line(fields: list[str]) -> str:
    out = io.StringIO()
    csv.writer(out).writerow([f[:MAX_RAW] for f in fields])
    return out.getvalue().rstrip("\r\n")[:MAX_RAW]


def _parquet(raw: IO[bytes], chunk_rows: int) -> Iterator[tuple[list[SourceRow], float]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(raw)
    except (pa.ArrowException, OSError) as exc:
        yield [SourceRow(0, "", error=f"not a readable Parquet file: {exc}", file_level=True)], 1.0
        return
    total = max(1, parquet.metadata.num_rows)
    number = 0
    if parquet.metadata.num_rows == 0:
        yield [SourceRow(0, "", error="empty file: no rows", file_level=True)], 1.0
        return
    try:
        for batch in parquet.iter_batches(batch_size=chunk_rows):
            chunk = []
            for data in batch.to_pylist():
                number += 1
                chunk.append(SourceRow(number, "", data))
            yield chunk, number / total
    except (pa.ArrowException, OSError) as exc:
        yield [SourceRow(number + 1, "", error=f"unreadable Parquet data: {exc}", file_level=True)], 1.0
