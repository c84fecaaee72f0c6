"""Experts' pseudonyms are keyed: unlinkable across clients, and not reversible without the key."""

from __future__ import annotations

import hashlib
import stat

from pydantic import SecretStr

from nightshift.platform import pseudonyms
from nightshift.platform.settings import Settings


def _with_key(key: bytes):
    from nightshift.delivery.records import pseudonym
    from nightshift.work.access import annotator_pseudonym

    pseudonyms.use_key(key)
    return pseudonym(7, 1234), annotator_pseudonym(3, 1234)


def test_a_pseudonym_cannot_be_reversed_by_hashing_every_id(monkeypatch) -> None:
    monkeypatch.setattr(pseudonyms, "_key", None)
    alias, reviewer_alias = _with_key(b"k" * 32)
    # What an attacker who knows the scheme but not the key tries: every id, unkeyed and with a
    # guessed key. Nothing matches.
    for expert_id in range(5_000):
        for text in (f"nightshift:7:{expert_id}", f"client:7:{expert_id}", f"review:3:{expert_id}"):
            digest = hashlib.sha256(text.encode()).hexdigest()
            assert alias[4:] not in digest and reviewer_alias[4:] not in digest


def test_two_clients_see_the_same_expert_under_unrelated_names_and_a_rotation_renames_everyone(monkeypatch) -> None:
    monkeypatch.setattr(pseudonyms, "_key", None)
    pseudonyms.use_key(b"first-key")
    one, other = pseudonyms.for_client(1, 99), pseudonyms.for_client(2, 99)
    assert one != other and one.startswith("exp_") and len(one) == 20
    assert pseudonyms.for_client(1, 99) == one  # stable under one key
    pseudonyms.use_key(b"second-key")
    assert pseudonyms.for_client(1, 99) != one


def test_the_embedded_default_keeps_its_key_in_a_file_only_its_owner_reads(tmp_path) -> None:
    settings = Settings(home=tmp_path)
    key = pseudonyms.load_key(settings)
    path = pseudonyms.key_file(settings)
    assert len(key) == 64 and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert pseudonyms.load_key(settings) == key  # made once
    pseudonyms.write_new_key(path)  # a rotation
    assert pseudonyms.load_key(settings) != key
    assert pseudonyms.load_key(Settings(home=tmp_path, pseudonym_key=SecretStr("from-the-env"))) == b"from-the-env"
