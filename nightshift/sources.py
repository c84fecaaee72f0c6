"""Where client files come from: a file, a glob, a drop folder, or an http(s) URL."""

from __future__ import annotations

import glob
import hashlib
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from nightshift.errors import SourceError
from nightshift.formats import SUFFIXES


def is_url(source: str) -> bool:
    return urlsplit(source).scheme in ("http", "https")


def _ingestible(path: Path) -> bool:
    name = path.name.lower().removesuffix(".gz")
    return path.is_file() and Path(name).suffix in SUFFIXES


def expand(source: str) -> list[Path]:
    """The local files a source names; a URL is fetched first (see fetch)."""
    if any(ch in source for ch in "*?["):
        matches = sorted(Path(p) for p in glob.glob(source, recursive=True))
        files = [p for p in matches if _ingestible(p)]
        if not files:
            raise SourceError(f"no .jsonl, .csv or .parquet file matches {source}")
        return files
    path = Path(source)
    if path.is_dir():
        return sorted(p for p in path.iterdir() if _ingestible(p))
    if not path.exists():
        raise SourceError(f"file not found: {path}")
    if not path.is_file():
        raise SourceError(f"not a file: {path}")
    return [path]


def fetch(url: str, folder: Path, timeout_seconds: float = 60.0, follow_redirects: bool = True) -> Path:
    """Stream a URL to a file in folder (memory stays flat); one clear line if it cannot be had.

    A URL a client gave is fetched without following redirects: a redirect could point inside."""
    folder.mkdir(parents=True, exist_ok=True)
    name = Path(urlsplit(url).path).name or "download.jsonl"
    target = folder / f"{hashlib.sha256(url.encode()).hexdigest()[:12]}-{name}"
    partial = target.with_suffix(target.suffix + ".part")
    try:
        with httpx.stream("GET", url, timeout=timeout_seconds, follow_redirects=follow_redirects) as response:
            if response.status_code != 200:
                raise SourceError(f"cannot fetch {url}: HTTP {response.status_code}")
            with partial.open("wb") as out:
                for block in response.iter_bytes(1 << 20):
                    out.write(block)
    except httpx.HTTPError as exc:
        partial.unlink(missing_ok=True)
        raise SourceError(f"cannot fetch {url}: {type(exc).__name__}") from None
    partial.replace(target)
    return target
