"""Near-duplicate free text across experts: texts sharing most of their word 3-grams, found by
MinHash and locality-sensitive hashing (datasketch) so a round's texts are never compared pair by
pair; each candidate pair is then confirmed by its exact Jaccard similarity. Exact copies are
review.agreement's; this finds the light edits that hide one."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from nightshift.fields import field_type
from nightshift.platform.models import Assignment, Submission
from nightshift.platform.sql import matches_any
from nightshift.projects.spec import ProjectBody
from nightshift.review.agreement import normalised_text
from nightshift.work.signals import Signal

NUM_PERM = 64
SHINGLE = 3
# Candidates checked per text: a text like hundreds of others is flagged by its first few.
MAX_CANDIDATES = 50
# Earlier texts read per item: the most recent answers are what a copy is made from.
EARLIER_PER_ITEM = 20


def shingles(text: str) -> set[bytes]:
    words = normalised_text(text).split()
    if len(words) < SHINGLE:
        return {b" ".join(words)} if words else set()
    return {b" ".join(words[k : k + SHINGLE]) for k in range(len(words) - SHINGLE + 1)}


def near_duplicates(
    rows: Sequence[Mapping[str, Any]], project: ProjectBody, earlier: Sequence[Mapping[str, Any]] = ()
) -> list[Signal]:
    """Submissions with a free text at least gates.near_duplicate_similarity alike (Jaccard of word
    3-grams) to an earlier one of another expert in these rows, but not identical to it; off when
    the spec leaves that unset. Each gets one signal: its closest such text. earlier: texts already
    judged (earlier rounds on the same items) that a text of these rows may have been made from;
    they get no signal themselves."""
    threshold = project.gates.near_duplicate_similarity
    if threshold is None:
        return []
    # Imported here: datasketch brings scipy, which only projects that look for near-duplicates need.
    from datasketch import MinHash, MinHashLSH

    min_length = project.gates.min_copied_text_length
    judged = {int(row["submission_id"]) for row in rows}
    best: dict[int, Signal] = {}
    for label in project.labels:
        kind = field_type(label)
        if not kind.checked_for_copies:
            continue
        texts: list[tuple[int, int, frozenset[bytes]]] = []
        for row in (*rows, *earlier):
            value = kind.echo_text(label, row["answer"].get(label.name))
            if value and len(value.strip()) >= min_length and (grams := shingles(value)):
                texts.append((int(row["submission_id"]), int(row["expert_id"]), frozenset(grams)))
        if len(texts) < 2:
            continue
        # Earliest first, and one entry per distinct text: many copies of one boilerplate text are
        # one candidate, not a pairwise comparison each (exact copies are review.agreement's).
        texts.sort(key=lambda text: text[0])
        first_of: dict[frozenset[bytes], int] = {}
        distinct = [n for n, text in enumerate(texts) if first_of.setdefault(text[2], n) == n]
        hashes = MinHash.bulk([list(texts[n][2]) for n in distinct], num_perm=NUM_PERM)
        # A little under the threshold: MinHash estimates, and the exact check below decides.
        lsh = MinHashLSH(threshold=max(threshold - 0.1, 0.1), num_perm=NUM_PERM)
        for n, minhash in zip(distinct, hashes, strict=True):
            lsh.insert(n, minhash)
        hash_of = dict(zip(distinct, hashes, strict=True))
        for submission, expert, mine in texts:
            if submission not in judged:
                continue
            own = first_of[mine]
            for m in lsh.query(hash_of[own])[:MAX_CANDIDATES]:
                other_submission, other_expert, other = texts[m]
                # Only a later text can have been made from an earlier one: the original's author is
                # not flagged (submission ids grow with time).
                if m == own or other_submission >= submission or other_expert == expert:
                    continue
                similarity = len(mine & other) / len(mine | other)
                if similarity < threshold:
                    continue
                found = best.get(submission)
                if found is None or similarity > found.score:
                    best[submission] = Signal(
                        submission,
                        "near_duplicate",
                        round(similarity, 4),
                        {"field": label.name, "similar_to_submission": other_submission},
                    )
    return list(best.values())


def earlier_texts(session: Session, rows: Sequence[Mapping[str, Any]], project: ProjectBody) -> list[dict[str, Any]]:
    """The free texts already judged on these rows' items (annotations of earlier rounds, up to
    EARLIER_PER_ITEM an item, most recent first): what a text of this round may have been made
    from. Only the checked fields are read, and only where near-duplicates are looked for."""
    names = [label.name for label in project.labels if field_type(label).checked_for_copies]
    if project.gates.near_duplicate_similarity is None or not rows or not names:
        return []
    items = sorted({int(row["item_id"]) for row in rows})
    taken: dict[int, int] = {}
    found = []
    for start in range(0, len(items), 10_000):
        part = items[start : start + 10_000]
        query = (
            select(
                Submission.id,
                Assignment.expert_id,
                Assignment.item_id,
                *(Submission.answer[name].as_string() for name in names),
            )
            .join(Assignment, Assignment.id == Submission.assignment_id)
            .where(
                matches_any(session, Assignment.item_id, part),
                Assignment.role == "annotate",
                Assignment.status.in_(("accepted", "rejected")),
            )
            .order_by(Submission.id.desc())
            .execution_options(yield_per=5_000)
        )
        for submission_id, expert_id, item_id, *texts in session.execute(query):
            if taken.get(item_id, 0) >= EARLIER_PER_ITEM:
                continue
            taken[item_id] = taken.get(item_id, 0) + 1
            answer = {name: text for name, text in zip(names, texts, strict=True) if text}
            found.append({"submission_id": submission_id, "expert_id": expert_id, "item_id": item_id, "answer": answer})
    return found
