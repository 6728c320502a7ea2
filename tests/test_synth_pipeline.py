"""PDFs made here (Japanese text and a table) → render → OCR / two-turn VQA / financial QA through a
teacher on a real loopback HTTP server → records that the trainer's loader reads; the tiny model's
outputs are rejected by reason; HTTP 500s are retried and timeouts skipped, and the run finishes."""

from __future__ import annotations

import hashlib
import io
import json

import pytest
from fixtures.synth.support import ExtractiveTeacher, FailOnce, Stall, make_corpus
from PIL import Image

from compass_train.records import load_records
from compass_train.synth.cli import main
from compass_train.synth.inprocess import InProcessTeacher
from compass_train.synth.pages import load_page
from compass_train.synth.server import TeacherServer
from compass_train.synth.sources import read_index

GENERATORS = ("ocr", "vqa", "finqa")


@pytest.fixture()
def corpus(tmp_path, capsys):
    manifest, pdf_dir = make_corpus(tmp_path)
    assert main(["pdfs", "--manifest", str(manifest), "--pdf-dir", str(pdf_dir)]) == 0
    capsys.readouterr()
    return pdf_dir, read_index(pdf_dir)[0]


def synth(generator, pdf_dir, out, server, *extra) -> int:
    argv = ["synth", generator, "--pdf-dir", str(pdf_dir), "--out", str(out)]
    return main([*argv, "--teacher", server.url, "--shard-size", "3", "--backoff", "0.01", *extra])


def card(out, generator) -> dict:
    return json.loads((out / generator / "dataset_card.json").read_text(encoding="utf-8"))


def test_pdfs_land_as_training_records_the_trainer_reads(corpus, tmp_path, capsys):
    pdf_dir, pdfs = corpus
    out = tmp_path / "data" / "p1"
    with TeacherServer(ExtractiveTeacher(pdf_dir, pdfs)) as server:
        for generator in GENERATORS:
            assert synth(generator, pdf_dir, out, server) == 0
    assert "4 records in 2 shards; 0 rejected" in capsys.readouterr().out

    dataset = load_records(out)  # the trainer's loader validates every record and image path
    kinds = [row["kind"] for row in dataset]
    assert kinds.count("ocr") == 4 and kinds.count("vqa") == 4 and kinds.count("doc_vqa") == 12
    assert len(set(dataset["id"])) == len(dataset)

    records = {
        generator: [
            json.loads(line)
            for shard in sorted((out / generator).glob("shard-*.jsonl"))
            for line in shard.read_text(encoding="utf-8").splitlines()
        ]
        for generator in GENERATORS
    }
    texts = {load_page(pdf_dir / p.path, i, 384).text for p in pdfs for i in range(p.pages)}
    ocr = records["ocr"][0]
    assert ocr["messages"][1]["content"][0]["text"] in texts
    assert ocr["messages"][0]["content"][0] == {"type": "image"}
    assert (out / "ocr" / ocr["images"][0]).is_file()
    meta = ocr["meta"]
    assert meta["source_url"] == "https://www.fsa.go.jp/common/budget/kessan.pdf"
    assert meta["page"] == 1 and meta["sha256"] == pdfs[0].sha256
    assert meta["teacher_model"] == "extractive-teacher" and meta["template_version"] == "ocr-v1"
    assert meta["licence"] == "PDL-1.0" and meta["ocr_agreement"] == pytest.approx(1.0)

    vqa = records["vqa"][0]["messages"]
    assert [m["role"] for m in vqa] == ["user", "assistant", "user", "assistant"]
    assert vqa[1]["content"][0]["text"] == "1,200"
    assert vqa[3]["content"][0]["text"] == "売上高 1,200"

    replies = [r["messages"][1]["content"][0]["text"] for r in records["finqa"]]
    assert "1,200 − 900 = 300" in replies and "900 ÷ 1,200 × 100 = 75.0" in replies
    assert {r["meta"]["question_type"] for r in records["finqa"]} == {"extraction", "computation"}

    summary = card(out, "finqa")
    assert summary["licences"] == ["PDL-1.0"] and set(summary["sources"]) == {"fsa", "mof"}
    assert summary["total_records"] == 12 and summary["rejects"] == {}
    assert "PDL-1.0" in (out / "finqa" / "README.md").read_text(encoding="utf-8")


def test_tiny_model_over_http_runs_end_to_end_and_its_gibberish_is_rejected_by_reason(
    corpus, tmp_path, capsys
):
    pdf_dir, _ = corpus
    out = tmp_path / "data"
    with TeacherServer(InProcessTeacher.from_spec("tiny")) as server:
        for generator in GENERATORS:
            assert synth(generator, pdf_dir, out, server, "--max-tokens", "24") == 0
        assert server.requests >= 12
    printed = capsys.readouterr().out
    for generator in GENERATORS:
        summary = card(out, generator)
        # A random model cannot produce JSON nor a transcription of the page: nothing gets through.
        assert summary["total_records"] == 0
        assert summary["total_rejects"] == 4
        assert set(summary["rejects"]) <= {"unparseable", "ocr_disagrees", "empty_answer"}
        assert (
            f"rejected ({', '.join(f'{r} {n}' for r, n in summary['rejects'].items())})" in printed
        )
    assert card(out, "vqa")["rejects"] == {"unparseable": 4}
    assert main(["inspect", str(out / "ocr")]) == 0
    shown = capsys.readouterr().out
    assert "rejected: 4" in shown and "by tiny, template ocr-v1; complete" in shown


def test_http_500s_are_retried_and_a_timeout_is_counted_and_skipped(corpus, tmp_path, capsys):
    pdf_dir, pdfs = corpus
    out = tmp_path / "data"
    stalled = load_page(pdf_dir / pdfs[1].path, 0, 384).image_sha256
    stall = Stall(ExtractiveTeacher(pdf_dir, pdfs), {stalled}, seconds=5.0)
    try:
        with TeacherServer(FailOnce(stall)) as server:
            status = synth("ocr", pdf_dir, out, server, "--timeout", "0.3", "--retries", "2")
            # Every page's first request got HTTP 500; three then succeeded, the stalled one
            # timed out twice (its retry budget) and was skipped.
            assert server.requests == 3 * 2 + 3
    finally:
        stall.released.set()
    assert status == 0
    summary = card(out, "ocr")
    assert summary["total_records"] == 3 and summary["rejects"] == {"teacher_timeout": 1}
    assert (
        f"ocr-{pdfs[1].sha256[:12]}-p0001"
        in (out / "ocr" / "rejects" / "shard-00000.json").read_text()
    )
    assert "teacher_timeout 1" in capsys.readouterr().out


def test_image_hash_is_the_rendered_page(corpus):
    pdf_dir, pdfs = corpus
    page = load_page(pdf_dir / pdfs[0].path, 0, 384)
    assert page.image_sha256 == hashlib.sha256(page.png).hexdigest()
    assert max(Image.open(io.BytesIO(page.png)).size) == 384
    assert "売上高 1,200" in page.text
