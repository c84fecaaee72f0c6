"""Which addresses Nightshift may connect to on a caller's say-so (a client's webhook URL, a batch
URL), and the one address each connection goes to.

A URL names a host; the host is resolved once here, every address it resolves to is checked, and
the connection goes to the address that was checked (the URL is rewritten to it, while the Host
header and TLS keep the name). Resolving again at connect time would let a name that answers
differently the second time (DNS rebinding) reach an address that was never checked.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from nightshift.platform.errors import NightshiftError

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
# host, port -> the addresses the host resolves to.
Resolver = Callable[[str, int], list[str]]

# IPv6 prefixes that carry an IPv4 address in their last 32 bits: the IPv4 address is what a
# translator on the way would connect to, so it is what must be public.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
# RFC 8215's local-use NAT64 prefix: translators inside a network, never public.
_LOCAL_NAT64 = ipaddress.IPv6Network("64:ff9b:1::/48")
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")
# Forms glibc's inet_aton takes as an IPv4 address (2130706433, 0x7f.1, 0177.0.0.1, 127.1) and
# ipaddress does not: read as the address a connection would reach, never as a name.
_NUMERIC_HOST = re.compile(r"^(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+)){0,3}$", re.IGNORECASE)


class AddressRefused(NightshiftError):
    """A URL whose host is not a public address (or not one that may be used at all)."""


def system_resolver(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        return []
    return sorted({str(info[4][0]).split("%")[0] for info in infos})


def literal_address(host: str) -> Address | None:
    """The address a host names literally, in any form a resolver would take as one."""
    try:
        return ipaddress.ip_address(host.split("%")[0] if ":" in host else host)
    except ValueError:
        pass
    if _NUMERIC_HOST.match(host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, compatible, NAT64, 6to4, Teredo), if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64 or address in _LOCAL_NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address in _IPV4_COMPATIBLE and int(address) > 1:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def non_public_reason(address: Address) -> str | None:
    """Why an address is not a public unicast one ("10.0.0.5 is private"), or None if it is."""
    if isinstance(address, ipaddress.IPv6Address):
        if address in _LOCAL_NAT64:
            return f"{address} is local NAT64"
        inner = embedded_ipv4(address)
        if inner is not None:
            reason = non_public_reason(inner)
            return f"{reason}, inside {address}" if reason else None
    for kind, flag in (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("private", address.is_private),
        ("reserved", address.is_reserved),
    ):
        if flag:
            return f"{address} is {kind}"
    return None if address.is_global else f"{address} is non-public"


@dataclass(frozen=True)
class Target:
    """Where to connect: the address that was checked, with the name for Host and TLS (SNI)."""

    url: str
    host_header: str | None = None
    tls_name: str | None = None


@dataclass(frozen=True)
class Allowlist:
    """What may be reached even when not public (local receivers, the demo, tests): hosts as a URL
    names them ("localhost", "127.0.0.1"), and networks written as such ("10.0.0.0/8"), which
    admit any name resolving into them. A plain address admits only URLs that name it: a name of
    anyone's that resolves to 127.0.0.1 is still refused. Empty means public addresses only."""

    names: frozenset[str]
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]

    @classmethod
    def of(cls, entries: Sequence[str]) -> Allowlist:
        names: set[str] = set()
        networks = []
        for entry in entries:
            if "/" in entry:
                networks.append(ipaddress.ip_network(entry, strict=False))
            else:
                names.add(entry.lower().strip("[]"))
        return cls(frozenset(names), tuple(networks))

    def allows_name(self, host: str) -> bool:
        return host.lower() in self.names

    def allows(self, address: Address) -> bool:
        return any(address.version == net.version and address in net for net in self.networks)


def resolve_target(
    url: str, allowlist: Allowlist, resolver: Resolver = system_resolver, what: str = "outbound"
) -> Target:
    """Check the URL, resolve its host once, refuse any address that is not public (unless
    allowlisted), and pin the first address checked. AddressRefused says why, for the operator;
    a caller facing a client says less (see sources.fetch)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").rstrip(".")
    if parts.scheme not in ("http", "https") or not host:
        raise AddressRefused(f"{what} URL must be http(s) and name a host")
    if parts.username or parts.password:
        raise AddressRefused(f"{what} URL must not carry credentials")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise AddressRefused(f"{what} URL has an invalid port") from None
    literal = literal_address(host)
    if literal is not None:
        addresses: list[Address] = [literal]
    else:
        addresses = []
        for found in resolver(host, port):
            try:
                addresses.append(ipaddress.ip_address(found))
            except ValueError:
                continue
        if not addresses:
            raise AddressRefused(f"{what} host {host} does not resolve")
    if not allowlist.allows_name(host):
        for address in addresses:
            reason = non_public_reason(address)
            if reason is not None and not allowlist.allows(address):
                raise AddressRefused(f"{what} host {host} is not a public address ({reason})")
    if literal is not None:
        return Target(url)  # nothing to resolve: the connection goes to the address checked
    pinned = str(addresses[0])
    netloc = f"[{pinned}]" if ":" in pinned else pinned
    if parts.port:
        netloc = f"{netloc}:{parts.port}"
    host_header = f"{host}:{parts.port}" if parts.port else host
    return Target(urlunsplit(parts._replace(netloc=netloc)), host_header, host)
