"""How the agent reads a server's answer: sent, retry later, split, or drop."""
from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from metrics_app.agent.client import IngestClient, Outcome
from tests.server import free_port


class Recorder(BaseHTTPRequestHandler):
    status = 201
    seen: list[tuple[str, str | None, bytes]] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Recorder.seen.append((self.path, self.headers.get("Authorization"), body))
        self.send_response(Recorder.status)
        self.end_headers()
        self.wfile.write(b'{"error": "x"}')

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def fake_server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    Recorder.seen = []
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


def test_records_are_posted_as_json_with_the_bearer_token(fake_server):
    Recorder.status = 201
    answer = IngestClient(fake_server, token="s3cret").post([{"a": 1}])
    assert answer.outcome is Outcome.SENT
    assert Recorder.seen == [("/metrics", "Bearer s3cret", b'[{"a":1}]')]


@pytest.mark.parametrize("status, outcome", [(500, Outcome.RETRY), (503, Outcome.RETRY), (429, Outcome.RETRY),
                                             (401, Outcome.RETRY), (403, Outcome.RETRY), (413, Outcome.TOO_LARGE), (422, Outcome.REJECTED),
                                             (400, Outcome.REJECTED)])
def test_each_status_has_its_fate(fake_server, status, outcome):
    Recorder.status = status
    answer = IngestClient(fake_server).post([{"a": 1}])
    assert answer.outcome is outcome and answer.detail.startswith(f"HTTP {status}")


def test_no_server_means_retry_later():
    answer = IngestClient(f"http://127.0.0.1:{free_port()}", timeout=1).post([])
    assert answer.outcome is Outcome.RETRY and "refused" in answer.detail.lower()
