"""A PDF page as teacher input: the rendered image (PNG at the model's resolution) and the text
layer, kept where the PDF has one so the teacher's answers can be checked against it."""

from __future__ import annotations

import hashlib
import io
import threading
from dataclasses import dataclass
from pathlib import Path

import pypdfium2 as pdfium

from compass_model.pages import render_page
from compass_train.synth import atomic

# pdfium is not thread-safe, not even across documents: every call into it goes through this lock.
PDFIUM_LOCK = threading.Lock()


@dataclass(frozen=True)
class Page:
    png: bytes
    image_sha256: str
    text: str  # the PDF's text layer, "" when it has none (a scan)

    @property
    def has_text_layer(self) -> bool:
        return bool(self.text.strip())


def text_layer(pdf_path: str | Path, page_index: int) -> str:
    document = pdfium.PdfDocument(str(pdf_path))
    try:
        textpage = document[page_index].get_textpage()
        return textpage.get_text_range().replace("\r\n", "\n")
    finally:
        document.close()


def load_page(pdf_path: str | Path, page_index: int, longest_side: int) -> Page:
    with PDFIUM_LOCK:
        image = render_page(pdf_path, page_index, longest_side)
        text = text_layer(pdf_path, page_index)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    png = buffer.getvalue()
    return Page(png=png, image_sha256=hashlib.sha256(png).hexdigest(), text=text)


def save_image(page: Page, path: Path) -> None:
    """Content-addressed, so an existing file is already right and is never rewritten."""
    if not path.exists():
        atomic.write_bytes(path, page.png)
