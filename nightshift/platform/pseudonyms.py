"""Pseudonyms of experts: keyed, so nobody without the server's key can turn one back into an id.

An unkeyed hash of a known id can be reversed by hashing every id (a fraction of a second for a
pool of millions). A pseudonym here is an HMAC-SHA256 under a secret key, scoped: per client in
deliveries (two clients cannot link the same expert), per project for reviewers. Rotating the key
gives every expert new pseudonyms from then on, unlinkable to the old ones.

The key comes from NIGHTSHIFT_PSEUDONYM_KEY (production: the same value on every worker), or on
the embedded default from a file in the state folder, made on first use and readable only by its
owner (`nightshift secrets rotate-pseudonym-key` makes a new one).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from nightshift.platform.settings import Settings

KEY_FILE = Path("secrets") / "pseudonym.key"
_key: bytes | None = None


def key_file(settings: Settings) -> Path:
    return (settings.home / KEY_FILE).resolve()


def load_key(settings: Settings) -> bytes:
    """The configured key, or the state folder's (made now if there is none)."""
    if settings.pseudonym_key is not None:
        return settings.pseudonym_key.get_secret_value().encode()
    path = key_file(settings)
    if not path.exists():
        write_new_key(path, replace=False)
    return path.read_bytes().strip()


def write_new_key(path: Path, replace: bool = True) -> None:
    """A new random key in a file only its owner can read; written whole, then moved in place."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fresh = path.with_suffix(f".{secrets.token_hex(4)}.tmp")
    descriptor = os.open(fresh, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.write(secrets.token_hex(32))
    if replace:
        fresh.replace(path)
        return
    try:
        # Two processes starting at once: the first key written stays, the other is dropped.
        os.link(fresh, path)
    except FileExistsError:
        pass
    finally:
        fresh.unlink()


def use_key(key: bytes) -> None:
    """Set by the composition root (Resources.build) for this process."""
    global _key
    _key = key


def _current_key() -> bytes:
    global _key
    if _key is None:
        # Outside a composed process (a script, a test): the settings the composition root reads.
        from nightshift.platform.settings import load_settings

        _key = load_key(load_settings())
    return _key


def _alias(prefix: str, scope: str, expert_id: int) -> str:
    digest = hmac.new(_current_key(), f"{scope}:{expert_id}".encode(), hashlib.sha256).hexdigest()
    return prefix + digest[:16]


def for_client(client_id: int, expert_id: int) -> str:
    """The expert as one client sees them in deliveries: stable for that client, unlinkable across clients."""
    return _alias("exp_", f"client:{client_id}", expert_id)


def for_reviewers(project_id: int, expert_id: int) -> str:
    """The annotator as reviewers and adjudicators of one project see them."""
    return _alias("ann_", f"review:{project_id}", expert_id)
