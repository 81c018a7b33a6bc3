"""The download deadline covers the whole download; checksum advice fits whose file it is."""

from __future__ import annotations

import dataclasses
import http.server
import io
import threading
import time
import urllib.request

import pytest

from memory_efficient_embeddings.ingest import RELEASES, load_ratings
from memory_efficient_embeddings.ingest import archive as archive_module
from memory_efficient_embeddings.ingest.archive import download
from memory_efficient_embeddings.ingest.errors import (
    ChecksumMismatchError,
    NetworkUnavailableError,
)

from .helpers import make_zip, ratings_text


class _TricklingResponse(io.BytesIO):
    """A server that sends one byte per read, forever: no single read ever times out."""

    headers: dict = {}

    def __init__(self):
        super().__init__()
        self.reads = 0

    def read1(self, size=-1):
        self.reads += 1
        return b"x"

    read = read1


def test_the_timeout_bounds_the_whole_download(tmp_path, monkeypatch):
    response = _TricklingResponse()
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: response)
    clock = iter(range(0, 10_000, 3))  # each look at the clock is 3 s later
    monkeypatch.setattr(archive_module.time, "monotonic", lambda: next(clock))
    with pytest.raises(NetworkUnavailableError, match=r"download_timeout_s \(5 s\) in all"):
        download(RELEASES["ml-1m"], tmp_path / "raw", timeout_s=5, progress=False)
    # Start at 0, deadline 5: the reads at 3 s and 6 s, then the download stops.
    assert response.reads == 2
    assert list((tmp_path / "raw").iterdir()) == []  # the partial download is gone


def _params(tmp_path, **extra):
    return {"dataset": "ml-1m", "source": "movielens", "raw_dir": str(tmp_path / "raw"), **extra}


def test_a_users_own_file_with_another_md5_is_not_to_be_deleted(tmp_path):
    release = RELEASES["ml-1m"]
    own = make_zip(tmp_path, release, ratings_text(release))
    with pytest.raises(ChecksumMismatchError) as caught:
        load_ratings(_params(tmp_path, path=str(own)))
    message = str(caught.value)
    assert "(parameter data.path)" in message
    assert "Delete it" not in message and "delete" not in message
    assert "data.verify_checksum: false" in message


def test_an_archive_in_raw_dir_with_another_md5_may_be_downloaded_again(tmp_path):
    release = RELEASES["ml-1m"]
    (tmp_path / "raw").mkdir()
    make_zip(tmp_path / "raw", release, ratings_text(release))
    with pytest.raises(ChecksumMismatchError, match="Delete it to download a fresh copy"):
        load_ratings(_params(tmp_path))


class _TricklingHandler(http.server.BaseHTTPRequestHandler):
    """Sends its status line and headers one byte every 0.2 s: no single read times out."""

    def do_GET(self):  # noqa: N802 - the http.server API
        reply = b"HTTP/1.0 200 OK\r\nContent-Length: 1000000\r\n" + b"X-Pad: " + b"a" * 200
        for byte in reply:
            if self.server.stopping.is_set():
                return
            try:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
            except OSError:
                return
            self.server.bytes_sent += 1
            time.sleep(0.2)

    def log_message(self, *args):
        pass


def test_a_server_that_trickles_its_headers_cannot_hold_the_download(tmp_path):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _TricklingHandler)
    server.stopping = threading.Event()
    server.bytes_sent = 0
    threading.Thread(target=server.serve_forever, daemon=True).start()
    release = dataclasses.replace(
        RELEASES["ml-100k"], url=f"http://127.0.0.1:{server.server_address[1]}/ml-100k.zip"
    )
    raw = tmp_path / "raw"
    try:
        with pytest.raises(NetworkUnavailableError, match=r"download_timeout_s \(1 s\) in all"):
            download(release, raw, timeout_s=1, progress=False)
        sent_when_it_gave_up = server.bytes_sent
    finally:
        server.stopping.set()
        server.shutdown()
        server.server_close()
    # Each byte arrives within the socket timeout, so only a whole-download deadline stops it.
    # Counted in the server's bytes, not in seconds: a loaded machine sends fewer, never more.
    # About 5 bytes go out in the 1 s deadline; waiting for all 213 would take 43 s.
    assert sent_when_it_gave_up < 100
    assert not (raw / release.archive_name).exists()
    assert [p for p in raw.iterdir() if p.suffix == ".part"] == []  # no partial file left
