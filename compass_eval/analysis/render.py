"""Writes report.md, report.html (self-contained), report.json and the PNGs, all or nothing."""

from __future__ import annotations

import base64
import json
import shutil
import tempfile
from pathlib import Path

import jinja2

from compass_eval.analysis.plots import all_plots
from compass_eval.analysis.view import build_view
from compass_eval.paths import reports_dir


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
    """Build every output in a temporary folder beside `out`, then move it into place."""
    images = all_plots(report)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        (staging / "report.json").write_text(
            json.dumps(report, indent=2, ensure_ascii=False, allow_nan=False) + "\n",
            encoding="utf-8",
        )
        (staging / "report.md").write_text(render_markdown(report, list(images)), encoding="utf-8")
        (staging / "report.html").write_text(render_html(report, images), encoding="utf-8")
        for name, data in images.items():
            (staging / name).write_bytes(data)
        if out.exists():
            old = out.with_name(f".{out.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            out.rename(old)
            staging.rename(out)
            shutil.rmtree(old)
        else:
            staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return sorted(out.iterdir())
