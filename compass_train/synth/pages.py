"""A PDF page as teacher input: the rendered image (PNG at the model's resolution) and the text
layer, kept where the PDF has one so the teacher's answers can be checked against it."""

from __future__ import annotations

import hashlib
import io
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import pypdfium2 as pdfium

from compass_model import atomic

# pdfium is not thread-safe, not even across documents: every call into it goes through this lock.
PDFIUM_LOCK = threading.Lock()
# Opening a PDF parses its fonts again (a few ms with Japanese CID fonts), more than rendering a
# page costs, so the last few documents stay open. Guarded by PDFIUM_LOCK.
_OPEN: OrderedDict[str, pdfium.PdfDocument] = OrderedDict()
_KEEP_OPEN = 8


@dataclass(frozen=True)
class Page:
    png: bytes
    image_sha256: str
    text: str  # the PDF's text layer, "" when it has none (a scan)

    @property
    def has_text_layer(self) -> bool:
        return bool(self.text.strip())


def _document(pdf_path: str | Path) -> pdfium.PdfDocument:
    key = str(Path(pdf_path).resolve())
    if key in _OPEN:
        _OPEN.move_to_end(key)
    else:
        _OPEN[key] = pdfium.PdfDocument(key)
        if len(_OPEN) > _KEEP_OPEN:
            _OPEN.popitem(last=False)[1].close()
    return _OPEN[key]


def load_page(pdf_path: str | Path, page_index: int, longest_side: int) -> Page:
    """Renders as `compass_model.pages.render_page` does (longer side = `longest_side` px)."""
    with PDFIUM_LOCK:
        # Each pdfium object is closed here, under the lock: left to the garbage collector, a
        # page would be closed when this function returns, outside the lock, while another
        # thread is inside pdfium (a segmentation fault under concurrency).
        page = _document(pdf_path)[page_index]
        try:
            width, height = page.get_size()
            bitmap = page.render(scale=longest_side / max(width, height))
            try:
                image = bitmap.to_pil().convert("RGB")  # a copy, independent of the bitmap
            finally:
                bitmap.close()
            textpage = page.get_textpage()
            try:
                text = textpage.get_text_range().replace("\r\n", "\n")
            finally:
                textpage.close()
        finally:
            page.close()
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)  # fast; the pages are small anyway
    png = buffer.getvalue()
    return Page(png=png, image_sha256=hashlib.sha256(png).hexdigest(), text=text)


def save_image(page: Page, path: Path) -> None:
    """Content-addressed, so an existing file is already right and is never rewritten. The rename
    makes it safe against a killed process; it is not fsynced one by one (that cost a third of the
    pipeline's time per page), so only a power cut could leave a shard naming a lost image, which
    the trainer's loader then reports by name."""
    if not path.exists():
        atomic.write_bytes(path, page.png, durable=False)
