"""Chain-of-thought distillation: seeded sampling with per-source quotas over local files, a teacher
over loopback HTTP answering in the XML format, and only well-formed outputs whose boxed answer
matches the reference kept, the rest counted by reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from fixtures.synth.support import ArithmeticSolver

from compass_model.errors import CompassInputError
from compass_train.records import load_records
from compass_train.synth.cli import main
from compass_train.synth.distill import load_sources, sample_problems
from compass_train.synth.inprocess import InProcessTeacher
from compass_train.synth.server import TeacherServer
from compass_train.synth.validate import check_cot_xml


def write_sources(root: Path, arith_quota: int | None = None, **extra) -> Path:
    """Two local sources in two formats: plain answers, and GSM8K's worked `#### n` solutions.

    `arith` holds ten sums, one with a wrong reference; `words` holds eight problems, four of them
    with no arithmetic written out (the solver then leaves its answer empty)."""
    arith = [
        {"question": f"{a} + {a * 3} はいくつですか。", "answer": str(a * 4 + (a == 4))}
        for a in range(1, 11)
    ]
    words = [
        {
            "question": f"箱が{n} × 3 個あります。全部で何個ですか。",
            "answer": f"{n} × 3 = {n * 3}\n#### {n * 3}",
        }
        for n in range(2, 6)
    ] + [
        {
            "question": f"りんごが三つと、みかんが{kanji}つあります。果物はいくつですか。",
            "answer": f"…\n#### {3 + k}",
        }
        for kanji, k in (("二", 2), ("四", 4), ("五", 5), ("六", 6))
    ]
    (root / "arith.jsonl").write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in arith), encoding="utf-8"
    )
    (root / "words.json").write_text(json.dumps(words, ensure_ascii=False), encoding="utf-8")
    sources = [
        {"name": "arith", "path": "arith.jsonl", "licence": "CC-BY-4.0", "quota": arith_quota},
        {
            "name": "words",
            "path": "words.json",
            "licence": "MIT",
            "answer_regex": "####\\s*(\\S+)\\s*$",
            **extra,
        },
    ]
    path = root / "math_sources.yaml"
    path.write_text(
        yaml.safe_dump(
            {"sources": [{k: v for k, v in s.items() if v is not None} for s in sources]},
            allow_unicode=True,
        ),
        encoding="utf-8",
    )
    return path


def distill(sources: Path, out: Path, url: str, n: int, *extra: str) -> int:
    return main(
        [
            "distill",
            "--sources",
            str(sources),
            "--n",
            str(n),
            "--seed",
            "0",
            "--out",
            str(out),
            "--teacher",
            url,
            *extra,
        ]
    )


def test_sampling_is_seeded_and_keeps_quotas(tmp_path):
    sources = load_sources(write_sources(tmp_path, arith_quota=6))
    picked = sample_problems(sources, 10, seed=0)
    assert [p.source.name for p in picked].count("arith") == 6
    assert [p.source.name for p in picked].count("words") == 4
    assert [p.id for p in picked] == [p.id for p in sample_problems(sources, 10, seed=0)]
    assert [p.id for p in picked] != [p.id for p in sample_problems(sources, 10, seed=1)]
    assert len({p.id for p in picked}) == 10
    everything = load_sources(write_sources(tmp_path, arith_quota=10))
    references = {p.question: p.reference for p in sample_problems(everything, 18, seed=0)}
    assert references["箱が2 × 3 個あります。全部で何個ですか。"] == "6"  # from the worked solution


def test_weights_share_what_quotas_leave(tmp_path):
    sources = load_sources(write_sources(tmp_path, weight=3.0))
    counts = [p.source.name for p in sample_problems(sources, 8, seed=0)]
    assert counts.count("arith") == 2 and counts.count("words") == 6


@pytest.mark.parametrize(
    ("arith_quota", "n", "message"),
    [(11, 12, "has 10 problems"), (6, 5, "more than --n 5"), (6, 30, "has 8 problems")],
)
def test_impossible_quotas_are_refused(tmp_path, arith_quota, n, message):
    sources = load_sources(write_sources(tmp_path, arith_quota=arith_quota))
    with pytest.raises(CompassInputError, match=message):
        sample_problems(sources, n, seed=0)


def test_sources_without_licence_give_one_line_and_exit_2(tmp_path, capsys):
    path = write_sources(tmp_path)
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    del raw["sources"][1]["licence"]
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    assert distill(path, tmp_path / "out", "http://127.0.0.1:9/v1", 4) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "sources[words].licence: missing" in err


def test_distillation_keeps_only_checked_answers_and_counts_the_rest(tmp_path, capsys):
    sources = write_sources(tmp_path, arith_quota=10)
    out = tmp_path / "data" / "p2"
    with TeacherServer(ArithmeticSolver()) as server:
        assert distill(sources, out, server.url, 18) == 0
        assert server.requests == 18
    card = json.loads((out / "distill" / "dataset_card.json").read_text(encoding="utf-8"))
    # 10 sums (one reference wrong) + 4 written-out products + 4 problems with nothing to compute.
    assert card["total_records"] == 13
    assert card["rejects"] == {"answer_mismatch": 1, "empty_answer": 4}
    assert card["licences"] == ["CC-BY-4.0", "MIT"]
    assert "answer_mismatch 1, empty_answer 4" in capsys.readouterr().out

    dataset = load_records(out)
    assert set(dataset["kind"]) == {"text_sft"} and len(dataset) == 13
    for line in (out / "distill" / "shard-00000.jsonl").read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        answer = record["messages"][1]["content"][0]["text"]
        assert check_cot_xml(answer) == record["meta"]["reference"] == record["meta"]["boxed"]
        assert record["images"] == [] and record["meta"]["template_version"] == "distill-v1"
    mismatch = json.loads(
        (out / "distill" / "rejects" / "shard-00000.json").read_text(encoding="utf-8")
    )
    assert any(
        r["reason"] == "answer_mismatch" and r["id"] == "distill-arith-0000003" for r in mismatch
    )

    assert main(["inspect", str(out / "distill")]) == 0
    shown = capsys.readouterr().out
    assert "text_sft: 13" in shown and "answer_mismatch: 1" in shown and "empty_answer: 4" in shown


def test_tiny_model_output_is_rejected_as_malformed(tmp_path):
    sources = write_sources(tmp_path)
    out = tmp_path / "data"
    with TeacherServer(InProcessTeacher.from_spec("tiny")) as server:
        assert distill(sources, out, server.url, 4, "--max-tokens", "16") == 0
    card = json.loads((out / "distill" / "dataset_card.json").read_text(encoding="utf-8"))
    assert card["total_records"] == 0 and card["rejects"] == {"malformed_xml": 4}
