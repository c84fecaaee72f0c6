"""Where client files come from: a file, a glob, a drop folder, or an http(s) URL."""

from __future__ import annotations

import glob
import hashlib
import logging
import re
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx

from nightshift.ingest.formats import SUFFIXES
from nightshift.platform.addresses import AddressRefused, Allowlist, Resolver, resolve_target, system_resolver
from nightshift.platform.errors import SourceError

SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


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


MAX_REDIRECTS = 5
REDIRECTS = (301, 302, 303, 307, 308)
log = logging.getLogger("nightshift.ingest.sources")


class FetchRefused(SourceError):
    """Every refused or failed fetch of a URL says the same: which address was refused, which port
    was closed, or which host did not answer is for the server's log, not for the caller, who
    could otherwise map the network behind it. `transient` (a timeout, a dropped connection) tells
    a retry policy what the message does not."""

    transient: bool = False


def fetch(
    url: str,
    folder: Path,
    allowlist: Sequence[str] = (),
    timeout_seconds: float = 60.0,
    max_bytes: int | None = None,
    resolver: Resolver = system_resolver,
) -> Path:
    """Stream a URL to a file in folder (memory stays flat).

    Each hop's host is resolved once and the connection goes to the address that was checked
    (public unless allowlisted); a redirect is followed only after its target passes the same
    check, at most MAX_REDIRECTS times. Anything refused or failed is one FetchRefused."""
    folder.mkdir(parents=True, exist_ok=True)
    name = SAFE_NAME.sub("_", Path(urlsplit(url).path).name)[-120:] or "download.jsonl"
    target_path = folder / f"{hashlib.sha256(url.encode()).hexdigest()[:12]}-{name}"
    partial = target_path.with_suffix(target_path.suffix + ".part")
    refused = FetchRefused(f"cannot fetch {_shown(url)}: not a reachable public address, or no file there")
    rules = Allowlist.of(allowlist)
    current = url
    try:
        with httpx.Client(timeout=timeout_seconds, follow_redirects=False) as client:
            for _ in range(MAX_REDIRECTS + 1):
                target = resolve_target(current, rules, resolver, what="batch")
                headers = {"host": target.host_header} if target.host_header else {}
                extensions = {"sni_hostname": target.tls_name} if target.tls_name else {}
                with client.stream("GET", target.url, headers=headers, extensions=extensions) as response:
                    if response.status_code in REDIRECTS and "location" in response.headers:
                        current = urljoin(current, response.headers["location"])
                        continue
                    if response.status_code != 200:
                        raise FetchRefused(f"HTTP {response.status_code}")
                    _stream_to(response, partial, max_bytes)
                    break
            else:
                raise FetchRefused("too many redirects")
    except SourceTooLarge:
        partial.unlink(missing_ok=True)
        raise
    except (AddressRefused, FetchRefused, httpx.HTTPError, OSError) as exc:
        partial.unlink(missing_ok=True)
        # The reason stays here; the URL may carry a token, so only its host is named.
        log.warning("fetch of a batch from %s refused: %s", urlsplit(url).hostname, _reason(exc))
        refused.transient = isinstance(exc, httpx.TransportError)
        raise refused from None
    partial.replace(target_path)
    return target_path


class SourceTooLarge(SourceError):
    pass


def _stream_to(response: httpx.Response, partial: Path, max_bytes: int | None) -> None:
    written = 0
    with partial.open("wb") as out:
        for block in response.iter_bytes(1 << 20):
            written += len(block)
            if max_bytes is not None and written > max_bytes:
                raise SourceTooLarge(f"the batch file is larger than the limit of {max_bytes} bytes")
            out.write(block)


def _reason(exc: Exception) -> str:
    return str(exc) if isinstance(exc, AddressRefused | FetchRefused) else type(exc).__name__


def _shown(url: str) -> str:
    """The URL as an error may show it: scheme, host and path, without query or credentials."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))[:300]
