"""Personal data in a client's items, found at ingest by Microsoft Presidio's recognizers.

Presidio rather than scrubadub: its recognizers validate what their patterns find (Luhn for cards,
the IBAN checksum, phone numbers parsed by libphonenumber, known-fake SSNs refused), each result
has a score, and it is Microsoft's maintained tool for exactly this. Only its pattern recognizers
run: they need no language model (nothing is downloaded), and names or addresses in free text,
which need one, are out of this scan's reach (docs/operations.md says so).

Speed: a chunk's texts are scanned joined into one text per recognizer (one call, not one per
item), and a recognizer only sees the texts in which a cheap test finds something it could match
(digits for a phone number, an "@" for an email address); libphonenumber's matcher alone would
otherwise cost more than the rest of ingest. What is found is recorded as kinds and counts, never
the values.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

# Between two joined texts: no pattern of these kinds matches across a blank line.
SEPARATOR = "\n\n"

# What a text must contain for a recognizer to be worth running on it: far looser than the
# recognizer itself, so nothing it would find is skipped.
_WORTH_SCANNING = {
    "EMAIL_ADDRESS": re.compile(r"@"),
    "PHONE_NUMBER": re.compile(r"\d(?:[\s().\-/+]{0,3}\d){5,}"),
    "CREDIT_CARD": re.compile(r"\d(?:[\s\-]?\d){11,}"),
    "IBAN_CODE": re.compile(r"[A-Za-z]{2}\s?\d{2}"),
    "IP_ADDRESS": re.compile(r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}|[0-9A-Fa-f]{0,4}:[0-9A-Fa-f]{0,4}:"),
    "US_SSN": re.compile(r"\d{3}[\s.\-]?\d{2}[\s.\-]?\d{4}"),
}


@dataclass(frozen=True)
class Found:
    start: int
    end: int
    kind: str


@cache
def _recognizers() -> dict[str, Any]:
    """One recognizer per kind, built once per process (Presidio imports spaCy: seconds, so only
    when a project asks for a scan)."""
    import tldextract
    from presidio_analyzer.predefined_recognizers import (
        CreditCardRecognizer,
        EmailRecognizer,
        IbanRecognizer,
        IpRecognizer,
        PhoneRecognizer,
        UsSsnRecognizer,
    )

    # The public suffix list shipped with tldextract: its default fetches the list from the
    # internet on first use, which a worker must not (and logs a traceback when it cannot).
    offline = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)

    class OfflineEmailRecognizer(EmailRecognizer):
        def validate_result(self, pattern_text: str) -> bool:
            return bool(offline(pattern_text).fqdn)

    return {
        "EMAIL_ADDRESS": OfflineEmailRecognizer(),
        "PHONE_NUMBER": PhoneRecognizer(),
        "CREDIT_CARD": CreditCardRecognizer(),
        "IBAN_CODE": IbanRecognizer(),
        "IP_ADDRESS": IpRecognizer(),
        "US_SSN": UsSsnRecognizer(),
    }


def scan(texts: Sequence[str], kinds: Sequence[str], min_score: float) -> list[list[Found]]:
    """What each text holds of the given kinds, in order and without overlaps (the higher score,
    then the longer span, wins an overlap)."""
    found: list[list[tuple[float, Found]]] = [[] for _ in texts]
    recognizers = _recognizers()
    for kind in kinds:
        worth = _WORTH_SCANNING[kind]
        chosen = [k for k, text in enumerate(texts) if worth.search(text)]
        if not chosen:
            continue
        joined, starts = _join([texts[k] for k in chosen])
        recognizer = recognizers[kind]
        for result in recognizer.analyze(joined, [kind], None):
            if result.score < min_score:
                continue
            part = bisect_right(starts, result.start) - 1
            offset = starts[part]
            end = result.end - offset
            if end > len(texts[chosen[part]]):
                continue  # across a separator: not one text's
            found[chosen[part]].append((result.score, Found(result.start - offset, end, kind)))
    return [_without_overlaps(spans) for spans in found]


def _join(texts: list[str]) -> tuple[str, list[int]]:
    starts, position = [], 0
    for text in texts:
        starts.append(position)
        position += len(text) + len(SEPARATOR)
    return SEPARATOR.join(texts), starts


def _without_overlaps(spans: list[tuple[float, Found]]) -> list[Found]:
    kept: list[Found] = []
    for _, span in sorted(spans, key=lambda s: (-s[0], -(s[1].end - s[1].start), s[1].start)):
        if all(span.end <= k.start or span.start >= k.end for k in kept):
            kept.append(span)
    return sorted(kept, key=lambda s: s.start)


def redact(text: str, spans: Sequence[Found]) -> str:
    """The text with each span replaced by its kind in angle brackets, e.g. <EMAIL_ADDRESS>."""
    parts, last = [], 0
    for span in spans:
        parts.append(text[last : span.start])
        parts.append(f"<{span.kind}>")
        last = span.end
    parts.append(text[last:])
    return "".join(parts)


def kinds_counted(spans: Sequence[Found]) -> Counter[str]:
    return Counter(span.kind for span in spans)


def described(counts: Counter[str]) -> str:
    """Kinds and counts for a reason or a log line, never a value: 'EMAIL_ADDRESS 1, PHONE_NUMBER 2'."""
    return ", ".join(f"{kind} {n}" for kind, n in sorted(counts.items()))
