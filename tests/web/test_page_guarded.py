"""The web page on a server with --api_key and --max_queue 1: the key is asked for once and kept for the tab,
and a busy server's 503 reads as a retry message, not a broken page."""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from tests.browser import Browser
from tests.support import RunningServer, start_server, stop_server

pytestmark = [pytest.mark.integration, pytest.mark.slow]

KEY = "web-page-secret"
AUTH = {"Authorization": f"Bearer {KEY}"}
HOLD_TEXT = "This request holds the only admission slot while the page asks for another one. " * 12


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    work = tmp_path_factory.mktemp("web-guarded")
    server = start_server(["--api_key", KEY, "--max_queue", "1"], work / "server.log")
    yield server
    stop_server(server)


def raw_status(url: str, path: str) -> int:
    """GET a path exactly as written (httpx would resolve the dots before sending)."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        connection.request("GET", path)
        return connection.getresponse().status
    finally:
        connection.close()


def test_only_the_page_files_are_open_without_the_key(served: RunningServer) -> None:
    for path in ("/", "/ui", "/ui/", "/ui/main.js", "/ui/style.css"):
        assert httpx.get(served.url + path).status_code == 200, path
    for path in ("/performance_info", "/v1/audio/voices", "/benchmark/latest", "/docs"):
        assert httpx.get(served.url + path).status_code == 401, path
    assert raw_status(served.url, "/ui/../performance_info") == 404
    assert raw_status(served.url, "/ui/%2e%2e/performance_info") == 404


def open_with_key(browser: Browser, url: str) -> None:
    """Open the page and give it the key if it asks (it does not when this tab already has it)."""
    browser.open(url, ready=False)
    browser.wait(lambda: browser.element("key-dialog").is_displayed() or browser.run("return window.ttspilot.ready"),
                 message="the page to start or ask for the key")
    if browser.element("key-dialog").is_displayed():
        browser.element("key-input").send_keys(KEY)
        browser.driver.find_element("css selector", "#key-dialog button").click()
    browser.wait(lambda: browser.run("return window.ttspilot.ready"), message="the page to start with the key")


def test_the_key_is_asked_once_and_kept_for_the_tab(served: RunningServer, browser: Browser) -> None:
    browser.open(served.url, ready=False)
    dialog = browser.element("key-dialog")
    browser.wait(dialog.is_displayed, message="the key dialog")
    browser.element("key-input").send_keys("wrong-key")
    browser.driver.find_element("css selector", "#key-dialog button").click()
    browser.wait(lambda: "refused" in browser.element("key-reason").text, message="the refusal")
    browser.element("key-input").send_keys(KEY)
    browser.driver.find_element("css selector", "#key-dialog button").click()
    browser.wait(lambda: browser.run("return window.ttspilot.ready"), message="the page to start with the key")
    assert not dialog.is_displayed()
    assert browser.run("return sessionStorage.getItem('ttspilot.apiKey')") == KEY
    browser.driver.refresh()
    browser.wait(lambda: browser.run("return window.ttspilot && window.ttspilot.ready"), message="a reload")
    assert not browser.element("key-dialog").is_displayed()
    browser.type_text("Spoken with the key.")
    result = browser.speak()
    assert result["error"] is None and result["audioSeconds"] > 0.5
    browser.assert_only_loopback()


def test_a_busy_server_shows_a_retry_message(served: RunningServer, browser: Browser) -> None:
    open_with_key(browser, served.url)
    browser.type_text("Asked for while the server is busy.")
    form = {"tts_text": HOLD_TEXT, "format": "stream"}
    with httpx.stream("POST", served.url + "/inference_sft", data=form, headers=AUTH, timeout=60) as holder:
        assert holder.status_code == 200
        chunks = holder.iter_raw()  # kept: a dropped iterator closes the response and frees the slot
        next(chunks)  # admitted and streaming: the one slot is taken
        result = browser.speak()
    status = browser.element("play-status")
    assert "busy" in result["error"] and "try again in 1 s" in result["error"], result
    assert status.text == result["error"] and "error" in status.get_attribute("class")
    browser.screenshot("playground-busy")
    browser.wait(lambda: httpx.get(served.url + "/performance_info", headers=AUTH).json()["pipeline"]["admitted"] == 0,
                 message="the held slot to free")
    again = browser.speak()  # the page still works once the server has room
    assert again["error"] is None and again["audioSeconds"] > 0.5
    browser.assert_only_loopback()
