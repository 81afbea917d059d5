"""The web page's voice manager on a tiny CosyVoice2 model, in a real headless Chromium.

Register one voice from an uploaded clip and one recorded from Chromium's fake microphone, speak
with the uploaded one in the playground, delete both. One tree only: the page is the same for every tree.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from selenium.webdriver.support.select import Select

from tests.browser import Browser
from tests.engines.cosyvoice.tiny_models import trees_for, write_tiny
from tests.support import REPO, RunningServer, start_server, stop_server, write_noise

pytestmark = [pytest.mark.integration, pytest.mark.cosyvoice, pytest.mark.slow]

TRANSCRIPT = "This is what the prompt recording says."


@pytest.fixture(scope="module", params=trees_for(2)[:1])
def served(request: pytest.FixtureRequest, cosyvoice_python: Path, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[RunningServer]:
    work = tmp_path_factory.mktemp("web-cosyvoice")
    model_dir = write_tiny(cosyvoice_python, request.param, 2, work / "model")
    server = start_server(["--model_dir", str(model_dir), "--cosyvoice_root", str(request.param)],
                          work / "server.log", env={"PYTHONPATH": str(REPO)}, timeout=240, python=cosyvoice_python)
    yield server
    stop_server(server)


def registered(url: str) -> list[str]:
    return [v["id"] for v in httpx.get(url + "/v1/audio/voices", timeout=30).json()["voices"] if v["kind"] == "registered"]


def fill(browser: Browser, voice_id: str) -> None:
    browser.element("voice-id").send_keys(voice_id)
    browser.element("voice-transcript").send_keys(TRANSCRIPT)


def submit_and_wait(browser: Browser, voice_id: str) -> None:
    browser.driver.find_element("css selector", "#voice-form button[type=submit]").click()
    browser.wait(lambda: f"Voice {voice_id} registered" in browser.element("voice-status").text
                 or "error" in browser.element("voice-status").get_attribute("class"), timeout=120,
                 message=f"{voice_id} to be registered")
    assert f"Voice {voice_id} registered" in browser.element("voice-status").text, browser.element("voice-status").text


def test_upload_record_speak_and_delete_voices(served: RunningServer, browser: Browser, tmp_path: Path) -> None:
    browser.open(served.url, "voices")
    assert browser.element("voice-form").is_displayed() and not browser.element("voices-absent").is_displayed()

    fill(browser, "uploaded")
    browser.element("voice-file").send_keys(str(write_noise(tmp_path / "clip.wav", seconds=3.0, rate=16000)))
    submit_and_wait(browser, "uploaded")

    fill(browser, "recorded")
    browser.element("record").click()
    browser.wait(lambda: "recording… 2" in browser.element("record-status").text, timeout=10,
                 message="two seconds from the fake microphone")
    browser.element("record-stop").click()
    assert browser.element("record-status").text.startswith("recorded 2.")
    submit_and_wait(browser, "recorded")
    assert sorted(registered(served.url)) == ["recorded", "uploaded"]
    browser.screenshot("voices")

    browser.driver.get(f"{served.url}/#playground")
    Select(browser.element("voice")).select_by_value("uploaded")
    browser.type_text("Hello in a cloned voice.")
    result = browser.speak(timeout=120)
    assert result["error"] is None and result["server"]["outcome"] == "ok" and result["audioSeconds"] >= 0.5

    browser.driver.get(f"{served.url}/#voices")
    for voice_id in ("uploaded", "recorded"):
        browser.driver.find_element("css selector", f"button[data-voice='{voice_id}']").click()
        browser.wait(lambda: f"Voice {voice_id} deleted" in browser.element("voice-status").text,
                     message=f"{voice_id} to be deleted")
    assert registered(served.url) == []
    assert not browser.driver.find_elements("css selector", "button[data-voice]")
    browser.assert_only_loopback()
