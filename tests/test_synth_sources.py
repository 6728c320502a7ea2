"""`compass-data pdfs`: the allow-list, sha256 and licence of every local PDF; refusals are one
line and exit 2, and leave no index behind."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from fixtures.synth.support import make_corpus

from compass_train.synth.cli import main
from compass_train.synth.sources import INDEX_NAME, read_index, sha256_file


def run_pdfs(capsys: pytest.CaptureFixture[str], manifest: Path, pdf_dir: Path) -> tuple[int, str]:
    status = main(["pdfs", "--manifest", str(manifest), "--pdf-dir", str(pdf_dir)])
    return status, capsys.readouterr().err


def edit_manifest(manifest: Path, change) -> None:
    raw = yaml.safe_load(manifest.read_text(encoding="utf-8"))
    change(raw)
    manifest.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")


def assert_refused(status: int, err: str, *words: str) -> None:
    assert status == 2
    assert err.count("\n") == 1 and err.startswith("error: "), err
    assert "Traceback" not in err
    for word in words:
        assert word in err, err


def test_index_records_origin_sha256_licence_and_pages(tmp_path, capsys):
    manifest, pdf_dir = make_corpus(tmp_path)
    status, _ = run_pdfs(capsys, manifest, pdf_dir)
    assert status == 0
    pdfs, sources = read_index(pdf_dir)
    assert [(p.path, p.source, p.licence, p.pages) for p in pdfs] == [
        ("fsa_kessan.pdf", "fsa", "PDL-1.0", 2),
        ("mof_yosan.pdf", "mof", "PDL-1.0", 2),
    ]
    assert pdfs[0].sha256 == sha256_file(pdf_dir / "fsa_kessan.pdf")
    assert pdfs[0].url == "https://www.fsa.go.jp/common/budget/kessan.pdf"
    assert [s.id for s in sources] == ["fsa", "mof"]


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/kessan.pdf",
        "https://www.fsa.go.jp.example.com/kessan.pdf",  # a look-alike host is not the agency
        "http://www.fsa.go.jp/kessan.pdf",  # nor is another scheme
    ],
)
def test_pdf_outside_the_allow_list_is_refused(tmp_path, capsys, url):
    manifest, pdf_dir = make_corpus(tmp_path)
    edit_manifest(manifest, lambda raw: raw["files"][0].update(url=url))
    status, err = run_pdfs(capsys, manifest, pdf_dir)
    assert_refused(status, err, "fsa_kessan.pdf", "outside the allow-list")
    assert not (pdf_dir / INDEX_NAME).exists()


def test_unlisted_pdf_is_refused(tmp_path, capsys):
    manifest, pdf_dir = make_corpus(tmp_path)
    (pdf_dir / "stray.pdf").write_bytes((pdf_dir / "fsa_kessan.pdf").read_bytes())
    status, err = run_pdfs(capsys, manifest, pdf_dir)
    assert_refused(status, err, "stray.pdf", "not in")


def test_unreadable_pdf_is_refused(tmp_path, capsys):
    manifest, pdf_dir = make_corpus(tmp_path)
    (pdf_dir / "mof_yosan.pdf").write_bytes(b"%PDF-1.4\nthis is not really a PDF\n")
    status, err = run_pdfs(capsys, manifest, pdf_dir)
    assert_refused(status, err, "mof_yosan.pdf", "not a readable PDF")
    assert not (pdf_dir / INDEX_NAME).exists()


def test_manifest_without_licence_is_refused(tmp_path, capsys):
    manifest, pdf_dir = make_corpus(tmp_path)
    edit_manifest(manifest, lambda raw: raw["sources"][1].pop("licence"))
    status, err = run_pdfs(capsys, manifest, pdf_dir)
    assert_refused(status, err, "mof", "licence")


def test_sha256_that_disagrees_with_the_manifest_is_refused(tmp_path, capsys):
    manifest, pdf_dir = make_corpus(tmp_path)
    edit_manifest(manifest, lambda raw: raw["files"][0].update(sha256="0" * 64))
    status, err = run_pdfs(capsys, manifest, pdf_dir)
    assert_refused(status, err, "sha256")


def test_pdf_changed_after_indexing_is_refused_by_synth(tmp_path, capsys):
    manifest, pdf_dir = make_corpus(tmp_path)
    assert run_pdfs(capsys, manifest, pdf_dir)[0] == 0
    with (pdf_dir / "fsa_kessan.pdf").open("ab") as pdf:
        pdf.write(b"\n% appended\n")
    status = main(
        [
            "synth",
            "ocr",
            "--pdf-dir",
            str(pdf_dir),
            "--out",
            str(tmp_path / "out"),
            "--teacher",
            "http://127.0.0.1:9/v1",
        ]
    )
    assert_refused(status, capsys.readouterr().err, "changed")
    assert not (tmp_path / "out").exists()
