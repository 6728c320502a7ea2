"""Where the PDFs come from: an allow-list of sources (agency, URL prefixes, licence) and an index
of the local PDFs with their origin URL and sha256. A PDF whose origin is not allowed is refused."""

from __future__ import annotations

import hashlib
import json
import posixpath
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pypdfium2 as pdfium
import yaml

from compass_model import atomic
from compass_model.errors import CompassInputError
from compass_model.pages import page_count
from compass_train.synth.pages import PDFIUM_LOCK

INDEX_NAME = "compass_pdfs.json"


@dataclass(frozen=True)
class Source:
    """One allowed origin: a government sub-site whose material is published under `licence`."""

    id: str
    agency: str
    url_prefixes: tuple[str, ...]
    licence: str
    licence_url: str = ""

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
    path: str
    url: str
    sha256: str | None = None


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


def _require(mapping: dict, key: str, where: str) -> object:
    value = mapping.get(key)
    if value in (None, "", []):
        raise CompassInputError(f"{where} has no {key!r}: every entry needs one")
    return value


def read_yaml(path: str | Path, what: str, list_key: str = "sources") -> dict[str, Any]:
    """A YAML mapping whose `list_key` is a non-empty list of mappings, or a one-line error."""
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CompassInputError(f"{what} {path} does not exist") from None
    except yaml.YAMLError as error:
        raise CompassInputError(
            f"{what} {path} is not valid YAML: {error}".splitlines()[0]
        ) from None
    entries = raw.get(list_key) if isinstance(raw, dict) else None
    if not isinstance(entries, list) or not entries:
        raise CompassInputError(f"{what} {path} needs a non-empty '{list_key}:' list")
    for number, entry in enumerate(entries, 1):
        if not isinstance(entry, dict):
            raise CompassInputError(f"{what} {path}: {list_key} entry #{number} is not a mapping")
    return raw


def load_manifest(path: str | Path) -> Manifest:
    """Reads and checks the manifest once; everything after works on the typed result."""
    path = Path(path)
    raw = read_yaml(path, "manifest")
    sources = []
    for number, entry in enumerate(raw["sources"], 1):
        where = f"{path}: source {entry.get('id', number)!r}"
        prefixes = _require(entry, "url_prefixes", where)
        if isinstance(prefixes, str):
            prefixes = [prefixes]
        sources.append(
            Source(
                id=str(_require(entry, "id", where)),
                agency=str(_require(entry, "agency", where)),
                url_prefixes=tuple(str(prefix) for prefix in prefixes),
                licence=str(_require(entry, "licence", where)),
                licence_url=str(entry.get("licence_url", "")),
            )
        )
    files = []
    for number, entry in enumerate(raw.get("files") or [], 1):
        where = f"{path}: file #{number}"
        if not isinstance(entry, dict):
            raise CompassInputError(f"{where} is not a mapping")
        files.append(
            ManifestFile(
                path=str(_require(entry, "path", where)),
                url=str(_require(entry, "url", where)),
                sha256=str(entry["sha256"]).lower() if entry.get("sha256") else None,
            )
        )
    return Manifest(path, tuple(sources), tuple(files))


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
        if entry.sha256 and entry.sha256 != digest:
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
    raw = json.loads(path.read_text(encoding="utf-8"))
    pdfs = [IndexedPdf(**entry) for entry in raw["pdfs"]]
    sources = [
        Source(**{**entry, "url_prefixes": tuple(entry["url_prefixes"])})
        for entry in raw["sources"]
    ]
    for pdf in pdfs:
        local = confined(pdf_dir, pdf.path, str(path))
        if not local.is_file() or sha256_file(local) != pdf.sha256:
            raise CompassInputError(
                f"{local} changed or vanished since it was indexed: run `compass-data pdfs` again"
            )
    return pdfs, sources
