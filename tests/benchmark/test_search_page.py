"""``bench serve``: the search page, driven in a real headless Chromium, and its API.

The page test starts ``bench serve`` as a real process on a tiny index, starts Chromium with
its DevTools endpoint, types a description into the page (``Input.insertText``: keystrokes as
a user's, not a value set by script), submits it, and waits for the ranked images: the first
one must be the top image ``bench search`` prints for the same text, loaded, and a click on
it must open the larger view. Skipped where no Chromium is found, except under ``CI=true``
(``.ci/run`` installs it), where that is a failure.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from benchmark.cli import main
from tests.benchmark.helpers import make_color_dataset, make_random_run
from tests.benchmark.test_report import BROWSERS, _chromium

QUERY = "a man in a red shirt and blue trousers"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(url: str, process: subprocess.Popen, what: str, tries: int = 300) -> bytes:
    """Poll ``url`` until it answers (the process must stay alive meanwhile)."""
    for _ in range(tries):
        if process.poll() is not None:
            output = process.stdout.read() if process.stdout else ""
            raise AssertionError(f"{what} exited with {process.returncode}: {output[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.read()
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"{what} did not answer at {url}")


@pytest.fixture(scope="module")
def index(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("search-page")
    dataset = make_color_dataset(base / "ds", ids=16, views=2)
    run = make_random_run(base / "run", seed=0)
    out = base / "index"
    result = CliRunner().invoke(main, ["index", "--run", str(run), "--dataset", f"ds={dataset}",
                                       "--out", str(out), "--device", "cpu", "--quiet"])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def server(index):
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "benchmark.cli", "serve", str(index), "--port", str(port),
         "--device", "cpu"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        _wait_for(f"http://127.0.0.1:{port}/", process, "bench serve")
        yield f"http://127.0.0.1:{port}/"
    finally:
        process.terminate()
        process.wait(timeout=30)


class DevTools:
    """The few DevTools protocol calls the test needs, over one page's websocket."""

    def __init__(self, url: str) -> None:
        import websocket

        self.socket = websocket.create_connection(url, timeout=30)
        self.next_id = 0

    def call(self, method: str, **params) -> dict:
        self.next_id += 1
        self.socket.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv())
            if message.get("id") == self.next_id:
                assert "error" not in message, message
                return message.get("result", {})

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True,
                           awaitPromise=True)
        return result["result"].get("value")

    def wait_until(self, expression: str, tries: int = 300):
        for _ in range(tries):
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.1)
        raise AssertionError(f"never true in the page: {expression}")

    def key(self, key: str, code: int) -> None:
        for kind in ("keyDown", "keyUp"):
            self.call("Input.dispatchKeyEvent", type=kind, key=key, code=key,
                      windowsVirtualKeyCode=code, nativeVirtualKeyCode=code,
                      **({"text": "\r"} if kind == "keyDown" and key == "Enter" else {}))


@pytest.fixture
def browser(tmp_path):
    binary = _chromium()
    if binary is None:
        if os.environ.get("CI") == "true":
            pytest.fail("no Chromium found under CI (looked for " + ", ".join(BROWSERS) + ")")
        pytest.skip("no Chromium found; install it with `apt-get install -y chromium`")
    port = _free_port()
    process = subprocess.Popen(
        [binary, "--headless", "--no-sandbox", "--disable-gpu", f"--remote-debugging-port={port}",
         "--remote-allow-origins=*", f"--user-data-dir={tmp_path / 'profile'}", "about:blank"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        pages = json.loads(_wait_for(f"http://127.0.0.1:{port}/json", process, "chromium"))
        page = next(p for p in pages if p.get("type") == "page")
        tools = DevTools(page["webSocketDebuggerUrl"])
        yield tools
        tools.socket.close()
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_typing_a_description_shows_the_ranked_gallery(index, server, browser):
    expected = json.loads(CliRunner().invoke(main, [
        "search", str(index), QUERY, "--topk", "20", "--json", "--device", "cpu"]).output)
    browser.call("Page.enable")
    browser.call("Page.navigate", url=server)
    browser.wait_until("document.readyState === 'complete' && !!document.getElementById('query')")
    browser.evaluate("document.getElementById('query').focus()")
    browser.call("Input.insertText", text=QUERY)
    assert browser.evaluate("document.getElementById('query').value") == QUERY
    browser.key("Enter", 13)
    count = browser.wait_until("document.querySelectorAll('figure.hit').length")
    assert count == len(expected["hits"])
    rows = browser.evaluate("[...document.querySelectorAll('figure.hit')]"
                            ".map(f => Number(f.dataset.row))")
    assert rows == [hit["row"] for hit in expected["hits"]]
    # the top image really loaded from the server, and a click shows it larger
    browser.wait_until("document.querySelector('figure.hit img').complete && "
                       "document.querySelector('figure.hit img').naturalWidth > 0")
    browser.evaluate("document.querySelector('figure.hit').click()")
    assert browser.wait_until("getComputedStyle(document.getElementById('viewer')).display "
                              "=== 'flex' && document.getElementById('large').naturalWidth")


def test_the_api_answers_and_refuses_in_one_line(index):
    from benchmark.search.search import Searcher
    from benchmark.search.serve import make_app

    client = make_app(Searcher.from_index(index, device="cpu"), topk=3).test_client()
    answer = client.get("/api/search", query_string={"q": QUERY})
    assert answer.status_code == 200 and len(answer.get_json()["hits"]) == 3
    top = answer.get_json()["hits"][0]
    image = client.get(f"/image/{top['row']}")
    assert image.status_code == 200 and image.data == Path(top["path"]).read_bytes()
    empty = client.get("/api/search", query_string={"q": "  "})
    assert empty.status_code == 400 and "empty" in empty.get_json()["error"]
    assert client.get("/image/100000").status_code == 404
    assert client.get("/image/..%2f..%2fetc%2fpasswd").status_code == 404
    assert client.get("/api/search", query_string={"q": "x", "topk": "many"}).status_code == 400
