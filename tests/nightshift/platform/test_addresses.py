"""Outbound fetches and webhooks reach public addresses only, in every spelling of an address, and
connect to the address that was checked."""

from __future__ import annotations

import socket

import pytest

from app.local_server import LocalServer, QuietHandler
from nightshift.delivery.endpoints import resolve_target as webhook_target
from nightshift.ingest.sources import FetchRefused, fetch
from nightshift.platform.addresses import AddressRefused, Allowlist, literal_address, resolve_target
from nightshift.platform.errors import NightshiftError

NOBODY = Allowlist.of([])

# Every spelling of a non-public address a URL may use: each must be refused, as a literal host
# and as what a name resolves to.
REFUSED_HOSTS = [
    "127.0.0.1",
    "2130706433",  # decimal
    "017700000001",  # octal
    "0177.0.0.1",  # octal dotted
    "0x7f000001",  # hex
    "0x7f.0x0.0x0.0x1",  # hex dotted
    "127.1",  # short form
    "127.0.1",
    "0",  # 0.0.0.0
    "10.0.0.1",
    "172.16.5.4",
    "192.168.1.1",
    "100.64.0.7",  # carrier-grade NAT
    "169.254.169.254",  # cloud metadata
    "169.254.170.2",  # container metadata
    "[::1]",
    "[::]",
    "[::ffff:127.0.0.1]",  # IPv4-mapped
    "[::ffff:7f00:1]",
    "[::127.0.0.1]",  # IPv4-compatible
    "[64:ff9b::7f00:1]",  # NAT64 of loopback
    "[64:ff9b::a9fe:a9fe]",  # NAT64 of the metadata address
    "[64:ff9b:1::808:808]",  # local-use NAT64
    "[2002:7f00:1::]",  # 6to4 of loopback
    "[2002:a9fe:a9fe::1]",  # 6to4 of the metadata address
    "[2001:0:4136:e378:8000:63bf:3fff:fdd2]",  # Teredo
    "[fe80::1]",
    "[fc00::1]",
    "[fd12:3456::1]",
    "[ff02::1]",  # multicast
    "224.0.0.1",
    "255.255.255.255",
    "198.18.0.1",  # benchmarking
    "240.0.0.1",  # reserved
]


@pytest.mark.parametrize("host", REFUSED_HOSTS)
def test_every_spelling_of_a_non_public_address_is_refused(host: str) -> None:
    for scheme in ("http", "https"):
        with pytest.raises(AddressRefused, match="not a public address"):
            resolve_target(f"{scheme}://{host}/batch.jsonl", NOBODY, lambda _h, _p: [])


@pytest.mark.parametrize("address", [h.strip("[]") for h in REFUSED_HOSTS if not h.startswith(("0x", "0177"))])
def test_a_name_resolving_to_any_of_them_is_refused(address: str) -> None:
    literal = literal_address(address)
    assert literal is not None
    with pytest.raises(AddressRefused, match="not a public address"):
        resolve_target("https://files.client.example/b.jsonl", NOBODY, lambda _h, _p: ["93.184.216.34", str(literal)])


@pytest.mark.parametrize("host", REFUSED_HOSTS)
def test_webhooks_refuse_them_too(host: str) -> None:
    with pytest.raises(NightshiftError, match="not a public address"):
        webhook_target(f"https://{host}/hook", [], lambda _h, _p: [])


def test_a_plain_allowlisted_address_admits_only_urls_naming_it() -> None:
    allow = Allowlist.of(["127.0.0.1", "localhost"])
    assert resolve_target("http://127.0.0.1:8/x", allow).url == "http://127.0.0.1:8/x"
    with pytest.raises(AddressRefused, match="is loopback"):
        resolve_target("http://rebind.attacker.example/x", allow, lambda _h, _p: ["127.0.0.1"])
    assert resolve_target("http://anything.example/x", Allowlist.of(["127.0.0.0/8"]), lambda _h, _p: ["127.0.0.9"])


def test_public_addresses_and_their_ipv6_embeddings_pass() -> None:
    for host in ("93.184.216.34", "[2606:4700::1]", "[::ffff:93.184.216.34]", "[64:ff9b::5db8:d822]"):
        assert resolve_target(f"https://{host}/x", NOBODY, lambda _h, _p: []).url == f"https://{host}/x"


class _Resolver:
    """A DNS stand-in that answers one thing the first time and another after (rebinding)."""

    def __init__(self, *answers: list[str]) -> None:
        self.answers = list(answers)
        self.calls = 0

    def __call__(self, host: str, port: int) -> list[str]:
        self.calls += 1
        return self.answers[min(self.calls, len(self.answers)) - 1]


class _Files(QuietHandler):
    def do_GET(self) -> None:
        if self.path == "/batch.jsonl":
            self.reply(200, b'{"external_id": "1"}\n')
        elif self.path == "/to-private":
            self.reply(302, headers={"location": "http://10.0.0.9/batch.jsonl"})
        elif self.path == "/to-rebound":
            port = self.server.server_port
            self.reply(302, headers={"location": f"http://files.client.example:{port}/batch.jsonl"})
        elif self.path == "/to-batch":
            self.reply(302, headers={"location": "/batch.jsonl"})
        else:
            self.reply(404)


def test_the_fetch_connects_to_the_address_it_checked_not_a_second_answer(tmp_path) -> None:
    """The name answers 127.0.0.1 (an allowlisted network here, standing in for a public address)
    the first time and 10.0.0.9 after: the fetch asks once and reaches the first answer. Had it
    asked again at connect time (httpx resolving the name itself), it would have reached nothing."""
    resolver = _Resolver(["127.0.0.1"], ["10.0.0.9"])
    with LocalServer(_Files) as files:
        port = files.origin.rsplit(":", 1)[1]
        path = fetch(f"http://files.client.example:{port}/batch.jsonl", tmp_path, ["127.0.0.0/8"], resolver=resolver)
    assert path.read_bytes() == b'{"external_id": "1"}\n'
    assert resolver.calls == 1


def test_each_redirect_is_checked_again(tmp_path) -> None:
    with LocalServer(_Files) as files:
        port = files.origin.rsplit(":", 1)[1]
        followed = fetch(f"{files.origin}/to-batch", tmp_path, ["127.0.0.1"])
        assert followed.read_bytes().startswith(b"{")
        with pytest.raises(FetchRefused):
            fetch(f"{files.origin}/to-private", tmp_path, ["127.0.0.1"])
        # The redirect names a host that now resolves to a private address: refused at that hop.
        rebinding = _Resolver(["10.0.0.9"])
        with pytest.raises(FetchRefused):
            fetch(f"http://127.0.0.1:{port}/to-rebound", tmp_path, ["127.0.0.1"], resolver=rebinding)
        assert rebinding.calls == 1
    assert not list(tmp_path.glob("*.part"))


def test_every_refused_or_failed_fetch_says_the_same(tmp_path) -> None:
    """Private, closed port, not found, redirected inside, unresolvable: one answer, so a caller
    cannot map what lies behind the server."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    with LocalServer(_Files) as files:
        urls = [
            "http://10.1.2.3/batch.jsonl",
            "http://169.254.169.254/latest/meta-data",
            f"http://127.0.0.1:{closed_port}/batch.jsonl",
            f"{files.origin}/missing.jsonl",
            f"{files.origin}/to-private",
            "http://no-such-host.invalid/batch.jsonl",
        ]
        allow = ["127.0.0.1"]
        messages = set()
        for url in urls:
            with pytest.raises(FetchRefused) as refused:
                fetch(url, tmp_path, allow, timeout_seconds=5)
            assert str(refused.value).startswith("cannot fetch http://")
            messages.add(str(refused.value).rsplit(": ", 1)[1])
    assert len(messages) == 1, messages


def test_a_source_larger_than_the_limit_is_refused_and_nothing_kept(tmp_path) -> None:
    from nightshift.ingest.sources import SourceTooLarge

    with LocalServer(_Files) as files, pytest.raises(SourceTooLarge, match="larger than the limit of 5 bytes"):
        fetch(f"{files.origin}/batch.jsonl", tmp_path, ["127.0.0.1"], max_bytes=5)
    assert list(tmp_path.iterdir()) == []
