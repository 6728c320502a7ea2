"""Self-made Japanese financial PDFs (a title, a sentence and a ruled two-column table per page, in
reportlab's built-in CID font: no font file needed) and the `compass-data pdfs` manifest for them.

Imports reportlab, a test/dev extra: only the demo data builder and the tests import this module.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from reportlab.lib.pagesizes import A4
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen import canvas

FONT = "HeiseiKakuGo-W5"
pdfmetrics.registerFont(UnicodeCIDFont(FONT))

Table = list[tuple[str, int]]
# file name → (origin URL, title, one table per page)
Reports = dict[str, tuple[str, str, list[Table]]]


def make_report_pdf(path: Path, title: str, tables: list[Table]) -> Path:
    """One page per table: a title, a sentence and a two-column table with ruled cells. The bytes
    depend only on the arguments (reportlab's invariant mode: no dates, no random ids)."""
    sheet = canvas.Canvas(str(path), pagesize=A4, invariant=1)
    width, height = A4
    for number, rows in enumerate(tables, 1):
        sheet.setFont(FONT, 16)
        sheet.drawString(60, height - 70, f"{title}(その{number})")
        sheet.setFont(FONT, 11)
        sheet.drawString(60, height - 100, "単位は百万円である。数値は決算概要による。")
        top = height - 140
        for index, (label, value) in enumerate([("項目", None), *rows]):
            y = top - 22 * index
            sheet.rect(60, y - 6, 300, 22)
            sheet.drawString(68, y, label)
            sheet.drawRightString(350, y, "金額" if value is None else f"{value:,}")
        sheet.showPage()
    sheet.save()
    return path


def write_corpus(
    pdf_dir: Path, manifest: Path, reports: Reports, sources: list[dict[str, Any]]
) -> None:
    """The reports' PDFs into `pdf_dir`, and the manifest listing them under the allowed `sources`."""
    pdf_dir.mkdir(parents=True, exist_ok=True)
    files = []
    for name, (url, title, tables) in reports.items():
        make_report_pdf(pdf_dir / name, title, tables)
        files.append({"path": name, "url": url})
    manifest.write_text(
        yaml.safe_dump({"sources": sources, "files": files}, allow_unicode=True), encoding="utf-8"
    )
