"""A client's webhook endpoint: its secret, its URL checked and resolved SSRF-safe, enabling it again."""

from __future__ import annotations

import base64
import datetime as dt
import secrets
from collections.abc import Sequence
from urllib.parse import urlsplit

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from nightshift.platform import addresses
from nightshift.platform.addresses import Allowlist, Resolver, Target, literal_address, system_resolver
from nightshift.platform.errors import NightshiftError
from nightshift.platform.models import Client, Delivery, DeliveryMessage


def new_webhook_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def check_webhook_url(url: str, http_allowlist: Sequence[str]) -> None:
    """What can be judged without DNS: the scheme, credentials, and literal addresses."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or not host:
        raise NightshiftError(f"webhook URL must be https (http only for allowlisted hosts): {url}")
    if parts.scheme == "http" and host not in http_allowlist:
        raise NightshiftError(f"webhook URL must be https (http only for allowlisted hosts): {url}")
    if parts.username or parts.password:
        raise NightshiftError("webhook URL must not carry credentials")
    if literal_address(host) is not None:
        resolve_target(url, http_allowlist)


def resolve_target(url: str, http_allowlist: Sequence[str], resolver: Resolver = system_resolver) -> Target:
    """Check the URL, resolve its host once, refuse any non-public address (IPv4 inside IPv6
    included), and pin the one checked (see nightshift.platform.addresses). Allowlisted hosts (local
    receivers) may use plain http and non-public addresses."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or (parts.scheme == "http" and host not in http_allowlist):
        raise NightshiftError(f"webhook URL must be https (http only for allowlisted hosts): {url}")
    allowlist = Allowlist.of(http_allowlist)
    if allowlist.allows_name(host) and not (parts.username or parts.password):
        return Target(url)
    return addresses.resolve_target(url, allowlist, resolver, what="webhook")


def enable_endpoint(session: Session, client: Client, now: dt.datetime) -> int:
    """Enable a disabled endpoint again; its waiting pages are due at once. Returns how many."""
    client.webhook_disabled_at = None
    client.webhook_disabled_reason = None
    result = session.execute(
        update(DeliveryMessage)
        .where(
            DeliveryMessage.status.in_(("pending", "retrying")),
            DeliveryMessage.delivery_id.in_(select(Delivery.id).where(Delivery.client_id == client.id)),
        )
        .values(next_attempt_at=now)
        .returning(DeliveryMessage.id)
    )
    return len(result.all())
