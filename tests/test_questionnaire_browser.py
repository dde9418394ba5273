"""The patient's questionnaire in a real browser (headless Chromium through its driver).

A link taken from the outbox opens on a phone-sized screen, the patient answers and sends; the task
is completed, the red flag reaches the doctor, the report counts the answer; a reused, expired or
forged link shows a clear page and changes nothing. `.ci/run` installs chromium and chromium-driver.
"""

from __future__ import annotations

import json
import re
import shutil
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from test_outbox import SEND_AT, chain, seed, tasks

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="needs chromium and chromedriver (apt)")
PHONE = (390, 844)


@pytest.fixture
def browser() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM  # type: ignore[assignment]
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                f"--window-size={PHONE[0]},{PHONE[1]}", "--lang=zh-CN"):
        options.add_argument(arg)
    options.add_experimental_option("mobileEmulation", {"deviceMetrics": {"width": PHONE[0], "height": PHONE[1],
                                                                          "pixelRatio": 2}})
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


class Server:
    def __init__(self, url: str, cfg: Path, clock: datetime):
        from werkzeug.serving import make_server

        from core.config import load_config
        from core.plugins import get_plugins
        from core.web import create_app

        self.clock = clock
        app = create_app(url, load_config(cfg), get_plugins(), clock=lambda: self.clock)
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.base = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


def _links(folder: Path) -> list[str]:
    return [re.search(r"Link: (\S+)", f.read_text(encoding="utf-8")).group(1)  # type: ignore[union-attr]
            for f in sorted(folder.iterdir())]


def test_patient_answers_on_a_phone_and_the_clinic_sees_it(cli, tmp_path, browser) -> None:
    from selenium.webdriver.common.by import By

    url = f"sqlite:///{tmp_path / 'followup.db'}"
    cfg = chain(tmp_path, by_sms=("dental.implant.check_24h", "dental.scaling.check_1d"))
    seed(cli, tmp_path, url,
         [["P1", "李娜", "F", "1990-03-02", "13912345678", "SH-DENT"],
          ["P2", "王强", "M", "1985-05-06", "13812345679", "SH-DENT"]],
         [["E1", "P1", "SH-DENT", "dental", "implant", "2026-11-23T09:30+08:00", "陈医生"],
          ["E2", "P2", "SH-DENT", "dental", "scaling", "2026-11-23T09:40+08:00", "陈医生"]])
    cli("send", db=url, config=cfg, now=SEND_AT)
    outbox = json.loads(cli("outbox", "--format", "json", db=url, config=cfg).output)
    assert {r["status"] for r in outbox} == {"sent"}
    implant_link, scaling_link = _links(tmp_path / "messages")
    server = Server(url, cfg, datetime.fromisoformat("2026-11-24T12:00+08:00"))
    try:
        path = implant_link.split("8000", 1)[1]
        browser.get(server.base + path)
        assert "您好" in browser.find_element(By.TAG_NAME, "main").text
        width = browser.execute_script("return document.documentElement.scrollWidth")
        assert width <= PHONE[0]  # nothing wider than the phone: no sideways scrolling
        shot = tmp_path / "questionnaire-phone.png"
        browser.save_screenshot(str(shot))
        assert shot.stat().st_size > 5000
        browser.find_element(By.CSS_SELECTOR, "input[name=bleeding_stopped][value=no]").click()
        browser.find_element(By.CSS_SELECTOR, "input[name=pain_level][value='3']").click()
        browser.find_element(By.ID, "submit").click()
        from selenium.webdriver.support import expected_conditions
        from selenium.webdriver.support.ui import WebDriverWait

        WebDriverWait(browser, 20).until(expected_conditions.presence_of_element_located((By.ID, "done")),
                                         message=browser.page_source[:2000])
        done = browser.find_element(By.ID, "done").text
        assert "谢谢" in done and "医生" in done
        browser.save_screenshot(str(tmp_path / "done-phone.png"))

        task = tasks(cli, url, cfg, "P1")["check_24h"]
        assert task["status"] == "completed"
        escalations = json.loads(cli("escalations", "list", "--format", "json", db=url, config=cfg).output)
        assert len(escalations) == 1 and escalations[0]["patient_id"] == "P1"
        report = json.loads(cli("report", "week", "--period", "2026-W48", "--site", "SH-DENT", "--format", "json",
                                db=url, config=cfg, now="2026-12-01T09:00+08:00").output)
        assert report["channels"] == [{"channel": "sms", "sent": 2, "delivered": 0, "failed": 0, "answered": 1,
                                       "response_rate": 0.5}]
        assert report["figures"]["reached"] >= 1
        common = ("week", "--period", "2026-W48", "--site", "SH-DENT")
        csv_text = cli("report", *common, "--format", "csv", db=url, config=cfg, now="2026-12-01T09:00+08:00").output
        assert "channels,sms,answered,1" in csv_text
        html = cli("report", *common, "--format", "html", "--locale", "en", "--out", str(tmp_path / "r.html"),
                   db=url, config=cfg, now="2026-12-01T09:00+08:00")
        assert html.exit_code == 0 and "Messages by channel" in (tmp_path / "r.html").read_text(encoding="utf-8")

        # The same link again: a clear page, nothing recorded twice.
        browser.get(server.base + path)
        assert browser.find_element(By.ID, "problem").get_attribute("data-kind") == "used"
        # A forged link.
        browser.get(server.base + path[:-4] + "AAAA")
        assert browser.find_element(By.ID, "problem").get_attribute("data-kind") == "forged"
        # The other patient's link after it expired.
        server.clock = datetime.fromisoformat("2026-12-20T12:00+08:00")
        browser.get(server.base + scaling_link.split("8000", 1)[1])
        assert browser.find_element(By.ID, "problem").get_attribute("data-kind") == "expired"
        assert "过期" in browser.find_element(By.ID, "problem").text
        assert tasks(cli, url, cfg, "P2")["check_1d"]["status"] == "open"
    finally:
        server.close()
