"""Debian's headless Chromium driven by Selenium, for the web page tests (.ci/run installs it).

Chromium's fake devices stand in for the speakers and the microphone; its performance log records
every request the page makes, so a test can fail when one leaves 127.0.0.1.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from tests.support import REPO

FLAGS = (
    "--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1000",
    "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
    # Chromium's own traffic (updates, metrics, suggestions) is not the page's; keep it off anyway.
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
    "--disable-default-apps", "--metrics-recording-only",
)
LOOPBACK = "127.0.0.1"
T = TypeVar("T")


def missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -r requirements-dev.txt)"
    absent = [name for name in ("chromium", "chromedriver") if shutil.which(name) is None]
    if absent:
        return (f"{' and '.join(absent)} not found: apt-get install chromium chromium-driver "
                "(.ci/run does it when it can)")
    return None


def screenshot_dir() -> Path:
    """$TTSPILOT_SCREENSHOTS, else tests-output/screenshots in the repository (CI keeps its output)."""
    folder = Path(os.environ.get("TTSPILOT_SCREENSHOTS", REPO / "tests-output" / "screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@dataclass
class Browser:
    driver: Any  # selenium.webdriver.Chrome
    downloads: Path
    urls: list[str] = field(default_factory=list)

    def run(self, script: str, *args: Any) -> Any:
        return self.driver.execute_script(script, *args)

    def wait(self, what: Callable[[], T], timeout: float = 30.0, message: str = "") -> T:
        """Poll `what` until it returns something true; AssertionError naming `message` after `timeout` s."""
        deadline = time.monotonic() + timeout
        while not (result := what()):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout:g} s waiting for {message or what}")
            time.sleep(0.05)
        return result

    def requested(self) -> list[str]:
        """Every URL the page asked for so far (requests and WebSockets), from the performance log."""
        for entry in self.driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            if message["method"] == "Network.requestWillBeSent":
                self.urls.append(message["params"]["request"]["url"])
            elif message["method"] == "Network.webSocketCreated":
                self.urls.append(message["params"]["url"])
        return self.urls

    def assert_only_loopback(self) -> None:
        """No request left 127.0.0.1 (data: and blob: URLs never leave the page)."""
        urls = self.requested()
        assert urls, "the performance log recorded no request at all"
        outside = [url for url in urls if urlsplit(url).scheme not in ("data", "blob")
                   and urlsplit(url).hostname != LOOPBACK]
        assert not outside, f"the page asked hosts other than {LOOPBACK}: {outside}"

    def open(self, url: str, view: str = "playground", ready: bool = True) -> None:
        """Load the page on `view`; with `ready`, wait until it has its voices (no key asked)."""
        self.driver.get(f"{url}/#{view}")
        if ready:
            self.wait(lambda: self.run("return window.ttspilot && window.ttspilot.ready"), message="the page to start")

    def element(self, element_id: str) -> Any:
        return self.driver.find_element("id", element_id)

    def type_text(self, text: str) -> None:
        """Type into the playground's text box as a person would (key events, not a value set from script)."""
        box = self.element("text")
        box.clear()
        box.send_keys(text)

    def speak(self, timeout: float = 60.0) -> dict[str, Any]:
        """Press Speak and wait until the stream is over; the playground's state then."""
        self.element("speak").click()
        return self.finished(timeout)

    def finished(self, timeout: float = 60.0) -> dict[str, Any]:
        """The playground's state once its stream ended (with an error, or its final timings fetched)."""
        self.wait(lambda: self.run("const p = window.ttspilot.playground; return p.done && (p.error !== null || "
                                   "(p.server !== null && p.server.outcome !== 'running'))"), timeout,
                  "the stream to end")
        return self.playground()

    def playground(self) -> dict[str, Any]:
        return self.run("const p = window.ttspilot.playground; return {...p, played: p.played()};")

    def screenshot(self, name: str) -> Path:
        """The whole page, top to bottom (Chromium's DevTools capture beyond the window)."""
        height = self.run("window.scrollTo(0, 0); return document.documentElement.scrollHeight")
        shot = self.driver.execute_cdp_cmd("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": 1280, "height": height, "scale": 1}})
        path = screenshot_dir() / f"{name}.png"
        path.write_bytes(base64.b64decode(shot["data"]))
        return path


@contextmanager
def chromium(downloads: Path) -> Iterator[Browser]:
    """One headless Chromium for a test module; downloads land in `downloads`."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in FLAGS:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                              "download.prompt_for_download": False})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=shutil.which("chromedriver")))
    try:
        driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
        yield Browser(driver, downloads)
    finally:
        driver.quit()
