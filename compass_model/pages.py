"""Document pages as model input: a PDF page rendered with pypdfium2, or any image file."""

from __future__ import annotations

from pathlib import Path

import pypdfium2 as pdfium
from PIL import Image


def render_page(pdf_path: str | Path, page_index: int, longest_side: int) -> Image.Image:
    """Renders one page so that its longer side is `longest_side` pixels (the processor squares it)."""
    document = pdfium.PdfDocument(str(pdf_path))
    try:
        page = document[page_index]
        width, height = page.get_size()
        image = page.render(scale=longest_side / max(width, height)).to_pil()
        return image.convert("RGB")
    finally:
        document.close()


def page_count(pdf_path: str | Path) -> int:
    document = pdfium.PdfDocument(str(pdf_path))
    try:
        return len(document)
    finally:
        document.close()


def load_image(path: str | Path) -> Image.Image:
    with Image.open(path) as image:
        return image.convert("RGB")
