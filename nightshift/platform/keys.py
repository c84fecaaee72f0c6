"""Personal tokens of experts and API keys of clients: issued once, kept only as a hash, rotatable."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import and_, bindparam, select, update
from sqlalchemy.orm import Session

from nightshift.platform.errors import NotFoundError
from nightshift.platform.models import ApiKey, Client, Expert, utcnow

Kind = Literal["expert", "client"]
PREFIXES: dict[str, str] = {"expert": "nse_", "client": "nsc_"}


@dataclass(frozen=True)
class Principal:
    """Who a request speaks for: an active expert or a client."""

    kind: Kind
    id: int
    key_id: int


@dataclass(frozen=True)
class IssuedKey:
    key_id: int
    # Shown once to whoever asked for it; only its hash is stored.
    key: str
    prefix: str


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def issue_key(session: Session, kind: Kind, owner_id: int) -> IssuedKey:
    key = PREFIXES[kind] + secrets.token_urlsafe(32)
    row = ApiKey(
        kind=kind,
        expert_id=owner_id if kind == "expert" else None,
        client_id=owner_id if kind == "client" else None,
        key_hash=key_hash(key),
        prefix=key[:10],
    )
    session.add(row)
    session.flush()
    return IssuedKey(row.id, key, row.prefix)


def rotate_key(session: Session, kind: Kind, owner_id: int, now: dt.datetime | None = None) -> tuple[IssuedKey, int]:
    """A new key; every older key of the owner is revoked. Returns the key and how many were revoked."""
    revoked = revoke_keys(session, kind, owner_id, now)
    return issue_key(session, kind, owner_id), revoked


def revoke_keys(session: Session, kind: Kind, owner_id: int, now: dt.datetime | None = None) -> int:
    owner = ApiKey.expert_id if kind == "expert" else ApiKey.client_id
    result = session.execute(
        update(ApiKey)
        .where(ApiKey.kind == kind, owner == owner_id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=now or utcnow())
    )
    return int(getattr(result, "rowcount", 0) or 0)


# The key presented (its hash bound as "key_hash") and not revoked: the one rule every lookup of a
# key uses, here and in the expert API's combined read (answers.submit_answer_with_key).
LIVE_KEY = and_(ApiKey.key_hash == bindparam("key_hash"), ApiKey.revoked_at.is_(None))

# Built once: every API request runs it, and building a statement costs more than running it.
_BY_HASH = (
    select(ApiKey.id, ApiKey.kind, ApiKey.expert_id, ApiKey.client_id, Expert.status)
    .outerjoin(Expert, Expert.id == ApiKey.expert_id)
    .where(LIVE_KEY)
)


def presented_hash(key: str | None) -> str | None:
    """The hash to look a presented key up by, or None for what cannot be a key of ours."""
    if not key or not key.startswith(tuple(PREFIXES.values())) or len(key) > 200:
        return None
    return key_hash(key)


def authenticate(session: Session, key: str | None) -> Principal | None:
    """The principal a presented key speaks for, or None: unknown, revoked, or a paused or banned expert."""
    hashed = presented_hash(key)
    if hashed is None:
        return None
    row = session.connection().execute(_BY_HASH, {"key_hash": hashed}).first()
    if row is None:
        return None
    key_id, kind, expert_id, client_id, expert_status = row
    if kind == "expert":
        return Principal("expert", expert_id, key_id) if expert_id and expert_status == "active" else None
    return Principal("client", client_id, key_id) if client_id else None


def owner_id(session: Session, kind: Kind, name: str) -> int:
    """An expert's id by handle or a client's by slug; unknown names are one clear error."""
    if kind == "expert":
        found = session.scalar(select(Expert.id).where(Expert.handle == name))
    else:
        found = session.scalar(select(Client.id).where(Client.slug == name))
    if found is None:
        raise NotFoundError(f"no {kind} {name!r}")
    return found
