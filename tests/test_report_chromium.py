"""report.html at a phone's and a desktop's width in real headless Chromium: the page never scrolls
sideways; a table wider than the screen scrolls inside its own container.

Screenshots of the whole page are kept in the test's tmp_path for a human to look at.
"""

import io
import json
from pathlib import Path

import pytest
from PIL import Image
from test_analysis_html import CHROMIUM, RUNS, inspect

from compass_eval.analysis.report_cli import main

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install -y chromium)"
)
PHONE, DESKTOP = 390, 1400
# Widths of the page and of the main table's container, as the browser laid them out.
LAYOUT = """JSON.stringify((() => {
  const page = document.documentElement;
  const wrap = document.getElementById('scores-wrap');
  const table = document.getElementById('scores');
  return {
    page: {scroll: page.scrollWidth, client: page.clientWidth},
    wrap: {scroll: wrap.scrollWidth, client: wrap.clientWidth,
           right: wrap.getBoundingClientRect().right,
           overflow: getComputedStyle(wrap).overflowX},
    table: {width: table.getBoundingClientRect().width, rows: table.rows.length},
  };
})())"""


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("chromium")
    policy = root / "gate.yaml"
    policy.write_text("max_drop: 0.05\nagainst: peak\nrequire_significant: false\n")
    out = root / "report"
    argv = ["--results", str(RUNS), "--phases", "p0", "p1", "p2", "p3", "--out", str(out)]
    assert main([*argv, "--iters", "200", "--policy", str(policy)]) == 0
    return out / "report.html"


@pytest.fixture(scope="module")
def layouts(page, tmp_path_factory) -> dict[int, tuple[dict, Image.Image]]:
    """The layout probe and a whole-page screenshot at each width, one browser each."""
    found = {}
    for width in (PHONE, DESKTOP):
        folder = tmp_path_factory.mktemp(f"w{width}")
        layout, errors, shot = inspect(page, folder / "profile", width=width, probe=LAYOUT)
        assert errors == []
        image = Image.open(io.BytesIO(shot))
        image.save(folder / f"report_{width}px.png")
        found[width] = (layout, image)
    return found


@pytest.mark.parametrize("width", [PHONE, DESKTOP])
def test_the_page_never_overflows_sideways(layouts, width):
    layout, screenshot = layouts[width]
    # the page's width is the window's, less a desktop's vertical scroll bar
    assert width - 20 <= layout["page"]["client"] <= width
    assert layout["page"]["scroll"] <= layout["page"]["client"], json.dumps(layout)
    assert layout["wrap"]["right"] <= layout["page"]["client"], json.dumps(layout)
    assert screenshot.width == layout["page"]["client"]  # the whole page is no wider
    assert layout["table"]["rows"] == 7  # header + 6 benchmarks


def test_the_main_table_fits_a_desktop_and_scrolls_in_place_on_a_phone(layouts):
    desktop = layouts[DESKTOP][0]
    assert desktop["wrap"]["scroll"] <= desktop["wrap"]["client"], json.dumps(desktop)
    phone = layouts[PHONE][0]
    # wider than the phone: it scrolls inside its own container, which the page holds
    assert phone["table"]["width"] > PHONE
    assert phone["wrap"]["overflow"] == "auto"
    assert phone["wrap"]["scroll"] > phone["wrap"]["client"]
