"""Receiving a batch file: streamed from the request straight to its file, bounded while it streams.

The client API authenticates before this reads a byte of the body, so nothing is written for a
request that is refused. A declared Content-Length over the limit is refused before reading;
an undeclared (chunked) body is counted as it arrives and the partial file removed at the limit.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from fastapi import HTTPException, Request
from python_multipart.multipart import MultipartParser, parse_options_header

SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
# Parts other than the file (a client's tool may add a field or two) and their headers are small.
MAX_OTHER_PART_BYTES = 64 * 1024
MAX_PARTS = 16

UPLOAD_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "properties": {"file": {"type": "string", "format": "binary"}},
                "required": ["file"],
            }
        }
    },
}


def too_large(limit: int) -> HTTPException:
    return HTTPException(413, f"the upload is larger than the limit of {limit} bytes")


def refuse_declared_size(request: Request, limit: int) -> None:
    """413 before reading, when the request says how large it is."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit + MAX_OTHER_PART_BYTES):
        raise too_large(limit)


@dataclass
class _Part:
    headers: dict[str, str] = field(default_factory=dict)
    header_field: bytearray = field(default_factory=bytearray)
    header_value: bytearray = field(default_factory=bytearray)
    size: int = 0


class _FileReceiver:
    """Callbacks of python-multipart's streaming parser: the part named 'file' goes to disk."""

    def __init__(self, partial: Path, limit: int) -> None:
        self.partial = partial
        self.limit = limit
        self.filename: str | None = None
        self.digest = hashlib.sha256()
        self.parts = 0
        self._part = _Part()
        self._out: BinaryIO | None = None
        self.error: HTTPException | None = None

    def on_part_begin(self) -> None:
        self.parts += 1
        if self.parts > MAX_PARTS:
            self.error = HTTPException(422, "too many parts in the form")
        self._part = _Part()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._part.header_field += data[start:end]
        if len(self._part.header_field) > 1024:
            self.error = HTTPException(422, "a part's header is too long")

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._part.header_value += data[start:end]
        if len(self._part.header_value) > 4096:
            self.error = HTTPException(422, "a part's header is too long")

    def on_header_end(self) -> None:
        name = self._part.header_field.decode("latin-1").strip().lower()
        self._part.headers[name] = self._part.header_value.decode("latin-1")
        self._part.header_field, self._part.header_value = bytearray(), bytearray()

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self._part.headers.get("content-disposition", ""))
        if options.get(b"name") == b"file" and self.filename is None:
            self.filename = options.get(b"filename", b"upload.jsonl").decode("utf-8", "replace")
            self._out = self.partial.open("wb")

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        chunk = data[start:end]
        self._part.size += len(chunk)
        if self._out is None:
            if self._part.size > MAX_OTHER_PART_BYTES:
                self.error = HTTPException(422, "a form field other than the file is too large")
            return
        if self._part.size > self.limit:
            self.error = too_large(self.limit)
            return
        self.digest.update(chunk)
        self._out.write(chunk)

    def on_part_end(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None

    def close(self) -> None:
        self.on_part_end()


async def receive_file(request: Request, folder: Path, limit: int) -> Path:
    """Stream the multipart body's 'file' part to folder; its path, named by its checksum."""
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        raise HTTPException(415, "send the batch as multipart/form-data with a 'file' part")
    refuse_declared_size(request, limit)
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / f".upload-{secrets.token_hex(8)}.part"
    receiver = _FileReceiver(partial, limit)
    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": receiver.on_part_begin,
            "on_header_field": receiver.on_header_field,
            "on_header_value": receiver.on_header_value,
            "on_header_end": receiver.on_header_end,
            "on_headers_finished": receiver.on_headers_finished,
            "on_part_data": receiver.on_part_data,
            "on_part_end": receiver.on_part_end,
        },
    )
    try:
        async for chunk in request.stream():
            parser.write(chunk)
            if receiver.error is not None:
                raise receiver.error
        parser.finalize()
        if receiver.error is not None:
            raise receiver.error
    except HTTPException:
        receiver.close()
        partial.unlink(missing_ok=True)
        raise
    except Exception:
        receiver.close()
        partial.unlink(missing_ok=True)
        raise HTTPException(422, "the multipart body could not be read") from None
    receiver.close()
    if receiver.filename is None:
        partial.unlink(missing_ok=True)
        raise HTTPException(422, "the form has no 'file' part")
    name = SAFE_NAME.sub("_", Path(receiver.filename).name)[-120:] or "upload.jsonl"
    target = folder / f"{receiver.digest.hexdigest()[:16]}-{name}"
    partial.replace(target)
    return target
