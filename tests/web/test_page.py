"""The web page in a real headless Chromium against a real server on the embedded Piper voice.

Playground (streams and plays before the response ends; figures equal the server's; download decodes),
voices (absent on Piper, and says why), dashboard (live chart, tier, latest benchmark), offline /docs,
and no request leaving 127.0.0.1. Each view's screenshot goes to tests-output/screenshots/.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import soundfile

from tests.browser import Browser
from tests.support import RunningServer, assert_speech, finished_record, start_server, stop_server
from ttspilot.bench.report import Row, frame, write_chart, write_files

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SENTENCE = "The launcher measured every tier on this machine and kept the fastest one that sounded right. "
LONG_TEXT = (SENTENCE * 14)[:1200]
SHORT_TEXT = "A short sentence to download."


def write_benchmark(folder: Path) -> Path:
    """What benchmark_performance.py leaves in benchmarks/<timestamp>/, written by its own report functions."""
    rows = [Row("cpu", "cpu", "ran", "A", quality="reference", load_s=0.4, rtf_median=0.08, rtf_p90=0.1,
                first_audio_s=0.2, throughput={1: 11.0}, peak_rss_mb=310.0),
            Row("basic", "basic", "skipped", "-", note="no usable GPU")]
    run = folder / "20260101-120000"
    write_files(frame(rows), run, "results", {"created": "2026-01-01T12:00:00+00:00", "recommendation": None})
    write_chart(rows, run / "chart.png")
    return folder


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    work = tmp_path_factory.mktemp("web")
    server = start_server(["--benchmark_dir", str(write_benchmark(work / "benchmarks"))], work / "server.log")
    yield server
    stop_server(server)


def test_playground_plays_a_long_text_before_its_response_completes(served: RunningServer, browser: Browser) -> None:
    browser.open(served.url)
    browser.type_text(LONG_TEXT)
    assert browser.run("return document.getElementById('text').value.length") == 1200
    browser.element("speak").click()
    # The audio clock has moved past the first scheduled sample while the response is still open.
    early = browser.wait(lambda: browser.run("const p = window.ttspilot.playground; "
                                             "return p.played() > 0.3 && {done: p.done, ttfaHeard: p.ttfaHeard}"),
                         timeout=20, message="the audio clock to advance")
    assert not early["done"], "playback started only after the whole response arrived"
    assert early["ttfaHeard"] is not None and early["ttfaHeard"] < 5
    final = browser.finished(timeout=90)
    assert final["error"] is None
    timings = finished_record(served.url, final["requestId"])
    assert timings["outcome"] == "ok" and timings["stream"]
    assert final["server"]["time_to_first_audio_s"] == timings["time_to_first_audio_s"]
    assert final["server"]["rtf"] == timings["rtf"]
    assert browser.element("ttfa-server").text == f"{timings['time_to_first_audio_s']:.3f} s"
    assert browser.element("rtf-server").text == f"{timings['rtf']:.3f}"
    assert final["segments"] == final["segmentsDone"] == timings["segments"] > 1
    assert abs(final["audioSeconds"] - timings["audio_s"]) < 0.01
    assert browser.element("request-link").text == final["requestId"]
    browser.element("request-link").click()
    browser.wait(lambda: final["requestId"] in browser.element("request-timings").text, message="the request's timings")
    browser.screenshot("playground")
    browser.assert_only_loopback()


def test_download_gives_a_decodable_file_in_the_chosen_format(served: RunningServer, browser: Browser) -> None:
    from selenium.webdriver.support.select import Select

    browser.open(served.url)
    browser.type_text(SHORT_TEXT)
    Select(browser.element("format")).select_by_value("flac")
    Select(browser.element("rate")).select_by_value("16000")
    browser.element("download").click()
    saved = browser.wait(lambda: [p for p in browser.downloads.glob("*.flac")], timeout=30, message="the download")
    time.sleep(0.2)  # Chromium renames the finished file into place; let it settle
    audio, rate = soundfile.read(saved[0], dtype="float32")
    assert rate == 16000
    assert_speech(audio, rate, SHORT_TEXT)
    browser.assert_only_loopback()


def test_voices_view_on_piper_says_why_it_cannot_clone(served: RunningServer, browser: Browser) -> None:
    browser.open(served.url, "voices")
    absent = browser.element("voices-absent")
    assert absent.is_displayed() and "piper" in absent.text and "CosyVoice" in absent.text
    assert not browser.element("voice-form").is_displayed()
    listed = httpx.get(f"{served.url}/v1/audio/voices").json()["voices"]
    rows = browser.driver.find_elements("css selector", "#voice-table tbody tr")
    assert [row.find_elements("tag name", "td")[0].text for row in rows] == [voice["id"] for voice in listed]
    browser.screenshot("voices-piper")
    browser.assert_only_loopback()


def test_dashboard_charts_requests_and_shows_the_tier(served: RunningServer, browser: Browser) -> None:
    browser.open(served.url, "dashboard")
    with httpx.Client(base_url=served.url, timeout=60) as client:
        for index in range(10):
            response = client.post("/v1/tts", json={"text": f"Request number {index} for the chart."})
            assert response.status_code == 200
    info = httpx.get(f"{served.url}/performance_info").json()
    browser.wait(lambda: browser.run("return window.ttspilot.dashboard.points.some(p => p.requests >= arguments[0] "
                                     "&& p.rtf50 !== null)", info["stats"]["requests_total"]),
                 timeout=10, message="a chart point after the 10 requests")
    points = browser.run("return window.ttspilot.dashboard.points")
    assert len(points) >= 2 and any(point["rps"] for point in points)
    drawn = browser.run("return document.querySelectorAll('#chart polyline, #chart circle').length")
    assert drawn >= 3  # RTF, first audio and requests per second each have a line or a point
    assert browser.element("dash-tier").text == info["effective_config"]["tier"]
    assert "in flight" in browser.element("dash-admission").text
    browser.wait(lambda: browser.run("const i = document.getElementById('benchmark-chart'); "
                                     "return i && i.complete && i.naturalWidth > 0"), message="the benchmark chart")
    cells = browser.driver.find_elements("css selector", "#benchmark-table tbody tr td:first-child")
    assert [cell.text for cell in cells] == ["cpu", "basic"]
    browser.screenshot("dashboard")
    browser.assert_only_loopback()


def test_docs_work_offline(served: RunningServer, browser: Browser) -> None:
    browser.driver.get(f"{served.url}/docs")
    browser.wait(lambda: browser.run("return document.querySelectorAll('.opblock').length > 10"), timeout=20,
                 message="Swagger UI to list the operations")
    assert "ttspilot" in browser.driver.find_element("css selector", ".swagger-ui .info .title").text
    browser.screenshot("docs")
    browser.assert_only_loopback()
