"""The HTML report in a real headless Chromium: it renders, its images load, no script fails.

Chromium is driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`: commands on
fd 3, replies on fd 4), so no driver package is needed.
"""

import base64
import contextlib
import io
import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from compass_eval.analysis.report_cli import main

RUNS = Path(__file__).parent / "fixtures" / "analysis" / "runs"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install -y chromium)"
)

PROBE = """JSON.stringify({
  images: Array.from(document.images).map(i => ({alt: i.alt, ok: i.complete && i.naturalWidth > 0,
                                                  width: i.getBoundingClientRect().width})),
  tables: Array.from(document.querySelectorAll('table')).map(t => ({
      id: t.id, rows: t.rows.length, height: t.getBoundingClientRect().height})),
  title: document.title})"""


class Browser:
    def __init__(self, profile: Path) -> None:
        cmd_read, self._cmd = os.pipe()
        self._reply, reply_write = os.pipe()

        def wire() -> None:
            os.dup2(cmd_read, 3)
            os.dup2(reply_write, 4)
            # dup2 onto the same number keeps close-on-exec (pipes are created with it)
            os.set_inheritable(3, True)
            os.set_inheritable(4, True)

        self.process = subprocess.Popen(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={profile}",
                "--remote-debugging-pipe",
            ],
            preexec_fn=wire,
            close_fds=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(cmd_read)
        os.close(reply_write)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict] = []

    def _read_message(self) -> dict:
        while b"\0" not in self._buffer:
            chunk = os.read(self._reply, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._cmd, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._read_message()
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]
            self.events.append(reply)

    def wait_for(self, method: str) -> None:
        while not any(e.get("method") == method for e in self.events):
            self.events.append(self._read_message())

    def close(self) -> None:
        with contextlib.suppress(RuntimeError):  # the browser may close the pipe first
            self.send("Browser.close")
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def inspect(
    page: Path, profile: Path, width: int = 1200, probe: str = PROBE
) -> tuple[dict, list[str], bytes]:
    """Load the page in a window `width` CSS pixels wide (a phone's below 600: the page's
    viewport meta applies); return the DOM probe, every error the page raised, and a
    screenshot of the whole page."""
    browser = Browser(profile)
    try:
        target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        for domain in ("Page", "Runtime", "Log"):
            browser.send(f"{domain}.enable", session=session)
        browser.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": width < 600},
            session=session,
        )
        browser.send("Page.navigate", {"url": page.resolve().as_uri()}, session=session)
        browser.wait_for("Page.loadEventFired")
        found = browser.send(
            "Runtime.evaluate", {"expression": probe, "returnByValue": True}, session=session
        )["result"]["value"]
        shot = browser.send(
            "Page.captureScreenshot",
            {"format": "png", "captureBeyondViewport": True},
            session=session,
        )["data"]
    finally:
        browser.close()
    errors = [
        json.dumps(e["params"])
        for e in browser.events
        if e.get("method") == "Runtime.exceptionThrown"
        or (e.get("method") == "Log.entryAdded" and e["params"]["entry"]["level"] == "error")
        or (e.get("method") == "Runtime.consoleAPICalled" and e["params"]["type"] == "error")
    ]
    return json.loads(found), errors, base64.b64decode(shot)


def test_report_opens_in_chromium_with_tables_and_plots(tmp_path):
    out = tmp_path / "report"
    argv = ["--results", str(RUNS), "--phases", "p0", "p1", "p2", "p3", "--out", str(out)]
    assert main([*argv, "--iters", "200"]) == 0
    probe, errors, shot = inspect(out / "report.html", tmp_path / "profile")
    assert errors == []
    assert probe["title"] == "Compass trajectory report"
    # one trajectory per benchmark plus the heat map, every one decoded and laid out
    assert len(probe["images"]) == 7
    assert all(i["ok"] and i["width"] > 100 for i in probe["images"]), probe["images"]
    tables = {t["id"]: t for t in probe["tables"]}
    assert tables["scores"]["rows"] == 7  # header + 6 benchmarks
    assert tables["paired"]["rows"] > 1
    assert all(t["height"] > 0 for t in probe["tables"])
    screenshot = Image.open(io.BytesIO(shot)).convert("L")
    assert screenshot.width > 1100 and screenshot.height > 2000  # the whole page
    assert len(np.unique(np.asarray(screenshot))) > 50  # text, shading and plots, not blank


def test_the_probe_sees_broken_images_and_script_errors(tmp_path):
    page = tmp_path / "bad.html"
    page.write_text(
        "<html><head><title>bad</title></head><body><table id='t'><tr><td>x</td></tr></table>"
        "<img alt='gone' src='data:image/png;base64,AAAA'>"
        "<script>undefined_function()</script></body></html>"
    )
    probe, errors, _ = inspect(page, tmp_path / "profile")
    assert probe["images"][0]["ok"] is False
    assert any("undefined_function" in e for e in errors)
