"""Writes report.md, report.html (self-contained), report.json and the PNGs, all or nothing."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import jinja2

from compass_eval.analysis.plots import all_plots
from compass_eval.analysis.view import build_view
from compass_eval.paths import reports_dir
from compass_model.atomic import staged_directory

# Left in every report folder, so that only an earlier report is ever replaced by a new one.
REPORT_MARKER = ".compass-report"


def _environment(autoescape: bool) -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(reports_dir() / "templates"),
        autoescape=autoescape,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render_markdown(report: dict, images: list[str]) -> str:
    template = _environment(autoescape=False).get_template("report.md.j2")
    return template.render(v=build_view(report), images=images)


def render_html(report: dict, images: dict[str, bytes]) -> str:
    """Every string from a results file is escaped; images are inlined as data URIs."""
    uris = {
        name: "data:image/png;base64," + base64.b64encode(data).decode("ascii")
        for name, data in images.items()
    }
    template = _environment(autoescape=True).get_template("report.html.j2")
    return template.render(v=build_view(report), images=uris)


def write_report(report: dict, out: Path) -> list[Path]:
    """Every output appears at `out` at once, replacing an earlier report; a folder that holds
    anything else is refused (see `compass_model.atomic.staged_directory`)."""
    images = all_plots(report)
    with staged_directory(out, marker=REPORT_MARKER) as staging:
        (staging / "report.json").write_text(
            json.dumps(report, indent=2, ensure_ascii=False, allow_nan=False) + "\n",
            encoding="utf-8",
        )
        (staging / "report.md").write_text(render_markdown(report, list(images)), encoding="utf-8")
        (staging / "report.html").write_text(render_html(report, images), encoding="utf-8")
        for name, data in images.items():
            (staging / name).write_bytes(data)
    return sorted(path for path in out.iterdir() if path.name != REPORT_MARKER)
