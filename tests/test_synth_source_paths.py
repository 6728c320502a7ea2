"""Where a PDF may come from and where it may be read: allow-list URLs are compared as a server
reads them (dot segments and escapes resolved, whole path segments), and manifest or index paths
that lead out of the PDF folder (`..`, absolute, symlinks) are refused in one line."""

from __future__ import annotations

import json
import shutil

import pytest
from fixtures.synth.support import make_corpus
from test_synth_sources import assert_refused, edit_manifest, run_pdfs

from compass_model.errors import CompassInputError
from compass_train.synth.sources import INDEX_NAME, Source, read_index

FSA = Source("fsa", "金融庁", ("https://www.fsa.go.jp/common/",), "PDL-1.0")


@pytest.mark.parametrize(
    "url",
    [
        "https://www.fsa.go.jp/common/budget/kessan.pdf",
        "https://WWW.FSA.GO.JP/common/kessan.pdf",  # host names are case-insensitive
        "https://www.fsa.go.jp:443/common/kessan.pdf",  # the default port, spelt out
        "https://www.fsa.go.jp/common/a/../kessan.pdf",  # `..` that stays inside
        "https://www.fsa.go.jp/common/%6Bessan.pdf",  # an escaped letter
    ],
)
def test_urls_under_the_prefix_are_allowed(url):
    assert FSA.allows(url)


@pytest.mark.parametrize(
    "url",
    [
        "https://www.fsa.go.jp/common/../../evil/x.pdf",
        "https://www.fsa.go.jp/common/%2e%2e/evil/x.pdf",  # the same, escaped
        "https://www.fsa.go.jp/common/..%2f..%2fevil/x.pdf",
        "https://www.fsa.go.jp/commonwealth/x.pdf",  # a prefix is whole path segments
        "https://www.fsa.go.jp:8443/common/x.pdf",  # another port is another server
        "https://www.fsa.go.jp@evil.example/common/x.pdf",  # credentials, another host
        "https://user@www.fsa.go.jp/common/x.pdf",
        "https://www.fsa.go.jp\\@evil.example/common/x.pdf",
        "https://www.fsa.go.jp/common/x.pdf\n",
        "http://www.fsa.go.jp/common/x.pdf",
        "https:///common/x.pdf",
    ],
)
def test_urls_that_leave_the_prefix_are_refused(url):
    assert not FSA.allows(url)


@pytest.mark.parametrize("path", ["../outside.pdf", "sub/../../outside.pdf", "ABSOLUTE"])
def test_manifest_paths_outside_the_pdf_folder_are_refused(tmp_path, capsys, path):
    manifest, pdf_dir = make_corpus(tmp_path)
    outside = tmp_path / "outside.pdf"
    shutil.copy(pdf_dir / "fsa_kessan.pdf", outside)
    (pdf_dir / "fsa_kessan.pdf").unlink()
    listed = str(outside) if path == "ABSOLUTE" else path
    edit_manifest(manifest, lambda raw: raw["files"][0].update(path=listed))
    status, err = run_pdfs(capsys, manifest, pdf_dir)
    assert_refused(status, err, "outside the PDF directory")
    assert not (pdf_dir / INDEX_NAME).exists()


def test_a_symlink_leading_out_of_the_pdf_folder_is_refused(tmp_path, capsys):
    manifest, pdf_dir = make_corpus(tmp_path)
    outside = tmp_path / "elsewhere.pdf"
    (pdf_dir / "fsa_kessan.pdf").rename(outside)
    (pdf_dir / "fsa_kessan.pdf").symlink_to(outside)
    status, err = run_pdfs(capsys, manifest, pdf_dir)
    assert_refused(status, err, "fsa_kessan.pdf", "outside the PDF directory")


def test_an_edited_index_cannot_point_outside_either(tmp_path, capsys):
    manifest, pdf_dir = make_corpus(tmp_path)
    assert run_pdfs(capsys, manifest, pdf_dir)[0] == 0
    index = json.loads((pdf_dir / INDEX_NAME).read_text(encoding="utf-8"))
    index["pdfs"][0]["path"] = "../../../../etc/passwd"
    (pdf_dir / INDEX_NAME).write_text(json.dumps(index), encoding="utf-8")
    with pytest.raises(CompassInputError, match="outside the PDF directory"):
        read_index(pdf_dir)
