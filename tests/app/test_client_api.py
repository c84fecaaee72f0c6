"""The client API over HTTP: send a batch by upload or URL, follow it, list deliveries, ask for a redelivery."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import func, select

from app.local_server import LocalServer, QuietHandler
from nightshift.delivery import build
from nightshift.platform.models import Batch, Item
from tests.app.conftest import _items
from tests.nightshift.delivery.test_delivery import mark_sent, prepare, run_to_passed


def test_an_upload_is_ingested_once_and_bad_rows_are_counted(world, app_env, prefect_api, tmp_path: Path) -> None:
    path = _items(tmp_path / "upload.jsonl", "u", 4)
    with path.open("a") as f:
        f.write("{not json\n")
    with world.http(world.client_keys["acme"]) as http:
        first = http.post(
            "/api/client/projects/acme-scenarios/batches/upload", files={"file": ("upload.jsonl", path.read_bytes())}
        )
        again = http.post(
            "/api/client/projects/acme-scenarios/batches/upload", files={"file": ("upload.jsonl", path.read_bytes())}
        )
        status = http.get(f"/api/client/batches/{first.json()['batch_id']}").json()
    assert first.status_code == 201, first.text
    body = first.json()
    assert (body["read"], body["accepted"], body["quarantined"], body["new_batch"]) == (5, 4, 1, True)
    assert again.json()["batch_id"] == body["batch_id"] and again.json()["accepted"] == 0
    assert status["status"] == "ingested" and status["items"] == {"pending": 4} and status["progress"] == 0.0
    with world.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Item).where(Item.batch_id == body["batch_id"])) == 4


class _Files(QuietHandler):
    body = b""

    def do_GET(self) -> None:
        if self.path == "/batch.jsonl":
            self.reply(200, self.body)
        else:
            self.reply(302, headers={"location": "http://169.254.169.254/latest/meta-data"})


def test_a_batch_by_url_is_fetched_and_a_redirect_or_private_address_is_refused(
    world, app_env, prefect_api, tmp_path
) -> None:
    _Files.body = _items(tmp_path / "by-url.jsonl", "url", 3).read_bytes()
    with LocalServer(_Files) as files, world.http(world.client_keys["acme"]) as http:
        path = "/api/client/projects/acme-scenarios/batches/from-url"
        fetched = http.post(path, json={"url": f"{files.origin}/batch.jsonl"})
        redirected = http.post(path, json={"url": f"{files.origin}/elsewhere.jsonl"})
        private = http.post(path, json={"url": "http://10.1.2.3/batch.jsonl"})
        metadata = http.post(path, json={"url": "https://169.254.169.254/batch.jsonl"})
    assert fetched.status_code == 201 and fetched.json()["accepted"] == 3
    # One answer for every refusal: a client cannot tell a private address from a closed port.
    refusals = [redirected, private, metadata]
    assert [r.status_code for r in refusals] == [400, 400, 400]
    assert len({r.json()["detail"].rsplit(": ", 1)[1] for r in refusals}) == 1
    assert "private" not in private.json()["detail"] and "link-local" not in metadata.json()["detail"]


def test_deliveries_are_listed_and_a_redelivery_is_asked_for_once(sessions, project, world, tmp_path) -> None:
    batch_id = run_to_passed(sessions)
    prepare(sessions, batch_id, build.DeliveryOptions(tmp_path / "store"))
    mark_sent(sessions)
    with world.http(world.client_keys["acme"]) as http:
        listed = http.get(f"/api/client/batches/{batch_id}/deliveries").json()
        progress = http.get(f"/api/client/batches/{batch_id}").json()
        asked = http.post(f"/api/client/batches/{batch_id}/redeliveries", json={"reason": "lost our copy"})
        twice = http.post(f"/api/client/batches/{batch_id}/redeliveries", json={"reason": "again"})
        no_reason = http.post(f"/api/client/batches/{batch_id}/redeliveries", json={"reason": ""})
        other = http.post(f"/api/client/batches/{world.batches['globex']}/redeliveries", json={"reason": "x"})
    assert [(d["version"], d["status"], d["reason"]) for d in listed] == [(1, "delivered", "first delivery")]
    manifest = listed[0]["manifest"]
    assert manifest["event"] == "batch.delivered" and {f["name"] for f in manifest["files"]} >= {"records.jsonl"}
    assert "expert-" not in json.dumps(manifest)
    assert progress["status"] == "delivered" and progress["progress"] > 0.9
    assert "cost_so_far_usd" not in progress
    assert asked.status_code == 202
    assert twice.status_code == 400 and "only a delivered or failed batch" in twice.json()["detail"]
    assert no_reason.status_code == 422 and other.status_code == 404
    with sessions() as session:
        assert session.get(Batch, batch_id).status == "passed"


def _raw_post(url: str, path: str, headers: dict[str, str], body: bytes = b"", timeout: float = 10) -> tuple[int, int]:
    """POST over a plain socket, the body sent only after the answer is awaited: (status, bytes sent).
    A server that answers without waiting for the body has not read it."""
    import socket
    from urllib.parse import urlsplit

    host, port = urlsplit(url).hostname, urlsplit(url).port
    head = f"POST {path} HTTP/1.1\r\nhost: {host}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    with socket.create_connection((host, port), timeout=timeout) as conn:
        conn.sendall(head.encode() + b"\r\n" + body)
        answer = conn.recv(4096)
    return int(answer.split(b" ", 2)[1]), len(body)


UPLOAD = "/api/client/projects/acme-scenarios/batches/upload"
MULTIPART = "multipart/form-data; boundary=xyz"


def test_an_upload_is_refused_before_its_body_is_read(world) -> None:
    """150 MB announced, nothing sent: without a key the answer is 401 at once, over the limit with
    a key 413 at once; the uploads folder stays empty."""
    uploads = world.resources.settings.home / "uploads"
    big = {"content-type": MULTIPART, "content-length": str(150 * 1024 * 1024)}
    assert _raw_post(world.url, UPLOAD, big)[0] == 401
    assert _raw_post(world.url, UPLOAD, big | {"authorization": "Bearer nsc_not-a-key"})[0] == 401
    key = {"authorization": f"Bearer {world.client_keys['acme']}"}
    assert _raw_post(world.url, UPLOAD, big | key)[0] == 413
    assert not uploads.exists() or not any(uploads.rglob("*"))


def test_an_upload_past_the_limit_while_streaming_is_413_and_leaves_nothing(world) -> None:
    """No Content-Length (chunked): counted as it streams, cut at the limit (256 KB in these tests)."""
    part = b'--xyz\r\ncontent-disposition: form-data; name="file"; filename="big.jsonl"\r\n\r\n' + b"x" * 400_000
    chunked = b"".join(
        f"{len(c):x}\r\n".encode() + c + b"\r\n" for c in (part[i : i + 65536] for i in range(0, len(part), 65536))
    )
    headers = {
        "content-type": MULTIPART,
        "transfer-encoding": "chunked",
        "authorization": f"Bearer {world.client_keys['acme']}",
    }
    status, _ = _raw_post(world.url, UPLOAD, headers, chunked)
    assert status == 413
    uploads = world.resources.settings.home / "uploads"
    assert not any(p.is_file() for p in uploads.rglob("*"))
