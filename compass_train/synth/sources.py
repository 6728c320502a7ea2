"""Where the PDFs come from: an allow-list of sources (agency, URL prefixes, licence) and an index
of the local PDFs with their origin URL and sha256. A PDF whose origin is not allowed is refused."""

from __future__ import annotations

import hashlib
import posixpath
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pypdfium2 as pdfium

from compass_model import atomic
from compass_model.errors import CompassInputError
from compass_model.pages import page_count
from compass_model.typed import convert, load, option, read_mapping
from compass_train.synth.pages import PDFIUM_LOCK

INDEX_NAME = "compass_pdfs.json"


@dataclass(frozen=True)
class Source:
    """One allowed origin: a government sub-site whose material is published under `licence`."""

    id: str = option(nonempty=True, help="a short name for the source")
    agency: str = option(nonempty=True, help="who publishes it")
    url_prefixes: tuple[str, ...] = option(nonempty=True, help="allowed origins of its PDFs")
    licence: str = option(nonempty=True, help="the licence its material is published under")
    licence_url: str = option("", help="where the licence is stated")

    def allows(self, url: str) -> bool:
        """Compared as a server would read them: scheme, host and port exactly, the path with
        percent-escapes decoded and `.`/`..` resolved, and prefixes matched on whole segments, so
        `https://www.fsa.go.jp/common/../../evil/` is not under `https://www.fsa.go.jp/common/`."""
        target = _origin_and_path(url)
        if target is None:
            return False
        for prefix in self.url_prefixes:
            allowed = _origin_and_path(prefix)
            if allowed is None or allowed[0] != target[0]:
                continue
            base = allowed[1].rstrip("/")
            if target[1] == allowed[1] or target[1].startswith(base + "/"):
                return True
        return False


_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin_and_path(url: str) -> tuple[tuple[str, str, int], str] | None:
    """((scheme, host, port), normalised path), or None for what no allow-list should accept
    (no host, credentials in the URL, backslashes or control characters, a bad port)."""
    if "\\" in url or any(ord(char) < 0x21 or ord(char) == 0x7F for char in url):
        return None
    parts = urlsplit(url)
    try:
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme)
    except ValueError:
        return None
    if not parts.hostname or parts.username is not None or port is None:
        return None
    path = posixpath.normpath(unquote(parts.path) or "/")
    if parts.path.endswith("/") and path != "/":
        path += "/"
    return (parts.scheme, parts.hostname.rstrip("."), port), path


@dataclass(frozen=True)
class ManifestFile:
    path: str = option(nonempty=True, help="the PDF, relative to the PDF directory")
    url: str = option(nonempty=True, help="where it was downloaded from")
    sha256: str | None = option(None, nonempty=True, help="its expected sha256, if known")


@dataclass(frozen=True)
class ManifestLayout:
    """What a manifest file holds."""

    sources: tuple[Source, ...] = option(nonempty=True, help="the allow-list")
    files: tuple[ManifestFile, ...] = option(default_factory=tuple, help="the local PDFs")


@dataclass(frozen=True)
class Manifest:
    path: Path
    sources: tuple[Source, ...]
    files: tuple[ManifestFile, ...]

    def source_for(self, url: str) -> Source | None:
        return next((source for source in self.sources if source.allows(url)), None)


@dataclass(frozen=True)
class IndexedPdf:
    """A local PDF whose origin is allowed, as `pdfs` found it (the input of every generator)."""

    path: str  # relative to the PDF directory
    url: str
    sha256: str
    pages: int
    source: str
    agency: str
    licence: str


@dataclass(frozen=True)
class IndexLayout:
    """What `pdfs` writes (INDEX_NAME), read back by every generator."""

    manifest: str
    sources: tuple[Source, ...]
    pdfs: tuple[IndexedPdf, ...]


def load_manifest(path: str | Path) -> Manifest:
    """Reads and checks the manifest once; everything after works on the typed result."""
    layout = load(ManifestLayout, path, "manifest")
    return Manifest(Path(path), layout.sources, layout.files)


def confined(pdf_dir: Path, relative: str, where: str) -> Path:
    """`pdf_dir / relative`, provided it stays inside `pdf_dir` once `..` and symlinks are
    resolved: a manifest or index cannot make the pipeline read files from elsewhere."""
    local = pdf_dir / relative
    if Path(relative).is_absolute() or not local.resolve().is_relative_to(pdf_dir.resolve()):
        raise CompassInputError(
            f"{where}: {relative} is outside the PDF directory {pdf_dir}; "
            "give paths inside it (no '..', absolute paths or links leading out)"
        )
    return local


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _pdf_pages(path: Path) -> int:
    try:
        with PDFIUM_LOCK:
            return page_count(path)
    except pdfium.PdfiumError as error:
        raise CompassInputError(f"{path}: not a readable PDF ({error})") from None


def index_pdfs(manifest: Manifest, pdf_dir: str | Path) -> list[IndexedPdf]:
    """Checks every local PDF against the allow-list and records origin, sha256 and page count.

    All-or-nothing: one refused PDF refuses the whole directory, so no index is half-trusted.
    """
    pdf_dir = Path(pdf_dir)
    if not pdf_dir.is_dir():
        raise CompassInputError(f"PDF directory {pdf_dir} does not exist")
    listed = {Path(entry.path).as_posix(): entry for entry in manifest.files}
    for local in sorted(pdf_dir.rglob("*.pdf")):
        relative = local.relative_to(pdf_dir).as_posix()
        if relative not in listed:
            raise CompassInputError(
                f"{local} is not in {manifest.path}: add it under 'files:' with its origin url, "
                "or remove it"
            )
    indexed = []
    for relative, entry in listed.items():
        local = confined(pdf_dir, relative, str(manifest.path))
        source = manifest.source_for(entry.url)
        if source is None:
            raise CompassInputError(
                f"{local}: origin {entry.url} is outside the allow-list of {manifest.path} "
                f"(allowed: {', '.join(p for s in manifest.sources for p in s.url_prefixes)})"
            )
        if not local.is_file():
            raise CompassInputError(f"{local} is listed in {manifest.path} but does not exist")
        digest = sha256_file(local)
        if entry.sha256 and entry.sha256.lower() != digest:
            raise CompassInputError(
                f"{local}: sha256 {digest[:12]}… differs from the manifest's {entry.sha256[:12]}…"
            )
        indexed.append(
            IndexedPdf(
                path=relative,
                url=entry.url,
                sha256=digest,
                pages=_pdf_pages(local),
                source=source.id,
                agency=source.agency,
                licence=source.licence,
            )
        )
    if not indexed:
        raise CompassInputError(f"{manifest.path} lists no files: nothing to index")
    return indexed


def write_index(pdf_dir: str | Path, manifest: Manifest, pdfs: list[IndexedPdf]) -> Path:
    path = Path(pdf_dir) / INDEX_NAME
    atomic.write_json(
        path,
        {
            "manifest": str(manifest.path),
            "sources": [asdict(source) for source in manifest.sources],
            "pdfs": [asdict(pdf) for pdf in pdfs],
        },
    )
    return path


def read_index(pdf_dir: str | Path) -> tuple[list[IndexedPdf], list[Source]]:
    """The index `pdfs` wrote, re-checked: a PDF changed since indexing is refused."""
    pdf_dir = Path(pdf_dir)
    path = pdf_dir / INDEX_NAME
    if not path.is_file():
        raise CompassInputError(
            f"{pdf_dir} has no {INDEX_NAME}: run `compass-data pdfs --manifest … --pdf-dir {pdf_dir}` first"
        )
    index = convert(IndexLayout, read_mapping(path, "PDF index"), f"PDF index {path}")
    pdfs, sources = list(index.pdfs), list(index.sources)
    for pdf in pdfs:
        local = confined(pdf_dir, pdf.path, str(path))
        if not local.is_file() or sha256_file(local) != pdf.sha256:
            raise CompassInputError(
                f"{local} changed or vanished since it was indexed: run `compass-data pdfs` again"
            )
    return pdfs, sources
