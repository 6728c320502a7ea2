"""Bad input to every command, run as a user runs it (the installed console scripts, in
subprocesses): each case must end with exit status 2, exactly one line of substance on stderr
naming the file or field, no traceback, and its folder (inputs and output location) byte for byte
as it was.

The cases run concurrently (two at a time) the first time any of them is asked for, so the whole
table costs about as much as its slowest commands; each test then checks its own outcome.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import struct
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from clitools import REPO, VENV_BIN, cli_env

RUNS = REPO / "tests" / "fixtures" / "analysis" / "runs"
CHAIN = REPO / "tests" / "fixtures" / "train" / "chain.yaml"
DEMO_PDFS = REPO / "compass_train" / "demo_data" / "pdfs"
JP_FIN = REPO.parent / "shared" / "data" / "jp_fin_harness"
WORKERS = 2
GATE_PY = "compass_eval/analysis/gate.py"

# Lines that are not the command's message: argparse's usage block, lm-eval's log records, and a
# notice bitsandbytes prints at import when its optional `kernels` package is missing.
_NOISE = (
    re.compile(r"^usage: |^\s{2,}\S"),
    re.compile(r"^\d{4}-\d{2}-\d{2}[: ]\d{2}:\d{2}:\d{2}\S* +(DEBUG|INFO|WARNING) "),
    re.compile(r"^Failed to load CPU gemm_4bit_forward from kernels-community"),
)


@dataclass(frozen=True)
class Case:
    """`argv[0]` is a console script; `{d}` in any argument is the case's own folder."""

    id: str
    argv: tuple[str, ...]
    expect: tuple[str, ...]  # each must appear in the one error line
    files: dict[str, str | bytes] = field(default_factory=dict)
    prepare: Callable[[Path], None] | None = None
    xfail: str | None = None


# The session's tiny checkpoint, set by the `outcome` fixture before any case is prepared.
_shared: dict[str, Path] = {}


def _copy_runs(folder: Path) -> None:
    shutil.copytree(RUNS, folder / "runs")


def _checkpoint_copy(folder: Path) -> Path:
    shutil.copytree(_shared["checkpoint"], folder / "ckpt" / "p0")
    return folder / "ckpt" / "p0"


def _truncated_weights(folder: Path) -> None:
    weights = _checkpoint_copy(folder) / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])


def _absurd_header(folder: Path) -> None:
    weights = _checkpoint_copy(folder) / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(struct.pack("<Q", 1 << 60) + data[8:])


def _garbage_header(folder: Path) -> None:
    weights = _checkpoint_copy(folder) / "model.safetensors"
    data = weights.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    weights.write_bytes(data[:8] + b"{" * length + data[8 + length :])


def _bad_config(folder: Path) -> None:
    (_checkpoint_copy(folder) / "config.json").write_text("{not json", encoding="utf-8")


def _pickle_only(folder: Path) -> None:
    """The real weights in torch's pickle format, in place of the safetensors file."""
    from safetensors.torch import load_file
    from torch import save

    checkpoint = _checkpoint_copy(folder)
    save(load_file(checkpoint / "model.safetensors"), checkpoint / "pytorch_model.bin")
    (checkpoint / "model.safetensors").unlink()


def _data_with_link(folder: Path) -> None:
    family = folder / "copy"
    family.mkdir()
    (family / "cma_basics.json").symlink_to(JP_FIN / "cma_basics.json")


def _pdf_dir(folder: Path) -> None:
    pdfs = folder / "pdfs"
    pdfs.mkdir()
    shutil.copy(DEMO_PDFS / "city_revenue.pdf", pdfs / "city_revenue.pdf")


def _indexed_pdf_dir(folder: Path) -> None:
    """A PDF folder that `compass-data pdfs` has indexed, as `synth` expects."""
    from compass_train.synth.sources import index_pdfs, load_manifest, write_index

    _pdf_dir(folder)
    (folder / "sources.yaml").write_text(_manifest(), encoding="utf-8")
    manifest = load_manifest(folder / "sources.yaml")
    write_index(folder / "pdfs", manifest, index_pdfs(manifest, folder / "pdfs"))


def _outside_link(folder: Path) -> None:
    _pdf_dir(folder)
    (folder / "elsewhere.pdf").write_bytes((DEMO_PDFS / "city_revenue.pdf").read_bytes())
    (folder / "pdfs" / "linked.pdf").symlink_to(folder / "elsewhere.pdf")


def _foreign_out(folder: Path) -> None:
    _copy_runs(folder)
    (folder / "out").mkdir()
    (folder / "out" / "notes.txt").write_text("mine\n", encoding="utf-8")


def _corrupt_results(folder: Path) -> None:
    _copy_runs(folder)
    (results,) = (folder / "runs" / "p1" / "compass-ckpt").glob("results_*.json")
    results.write_text('{"results": {', encoding="utf-8")


def _corrupt_samples(folder: Path) -> None:
    _copy_runs(folder)
    (samples,) = (folder / "runs" / "p2" / "compass-ckpt").glob("samples_*.jsonl")
    samples.write_text(samples.read_text(encoding="utf-8") + "{truncated\n", encoding="utf-8")


def _recipe_with(folder: Path, text: str) -> None:
    """The trainer tests' chain, data paths made absolute, with `text` appended."""
    chain = CHAIN.read_text(encoding="utf-8").replace(
        "../../../compass_train/", str(REPO / "compass_train") + "/"
    )
    (folder / "recipe.yaml").write_text(chain + text, encoding="utf-8")


def _escaping_images(folder: Path) -> None:
    """A record whose image path climbs out of its JSONL file's folder to a real image."""
    (image,) = sorted((REPO / "compass_train" / "demo_data" / "p1" / "ocr" / "images").glob("*"))[
        :1
    ]
    shutil.copy(image, folder / "outside.png")
    (folder / "data").mkdir()
    record = {
        "id": "r1",
        "kind": "ocr",
        "messages": [
            {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "読んで"}]},
            {"role": "assistant", "content": "歳入"},
        ],
        "images": ["../outside.png"],
    }
    (folder / "data" / "records.jsonl").write_text(json.dumps(record) + "\n", encoding="utf-8")
    (folder / "recipe.yaml").write_text(
        "name: escape\nphases:\n  - name: p1\n    parent: p0\n    stages:\n"
        "      - {name: s1, data: [data/records.jsonl], train: [projector]}\n",
        encoding="utf-8",
    )


MANIFEST = """sources:
  - id: demo
    agency: Compass demo
    url_prefixes: ["https://compass-demo.invalid/reports/"]
    licence: CC0-1.0
files:
  - path: {path}
    url: {url}
"""


def _manifest(path: str = "city_revenue.pdf", url: str = "", extra: str = "") -> str:
    url = url or f"https://compass-demo.invalid/reports/{path}"
    return MANIFEST.format(path=path, url=url) + extra


MATH = """sources:
  - name: gsm8k
    path: {path}
    licence: MIT
    answer_regex: "####\\\\s*(\\\\S+)\\\\s*$"
""".format(path=REPO.parent / "shared" / "data" / "gsm8k" / "test.jsonl")

GATE = ("compass-gate", "--results", "{d}/runs", "--phases", "p0", "p1", "p2", "p3")
GATE_POLICY = (*GATE, "--policy", "{d}/gate.yaml")
REPORT = ("compass-report", "--results", "{d}/runs", "--phases", "p0", "p1", "p2", "p3")
REPORT_OUT = (*REPORT, "--out", "{d}/out")
TRAIN = ("compass-train", "run", "{d}/recipe.yaml", "--out", "{d}/ckpt")
EVAL = ("compass-eval", "--checkpoints", "{d}/ckpt", "--phases", "p0", "--out", "{d}/results")
EVAL_TASK = (*EVAL, "--tasks", "cma_basics", "--limit", "2")
LM_EVAL = ("lm_eval", "--model", "compass", "--tasks", "cma_basics", "--limit", "1")
PDFS = ("compass-data", "pdfs", "--manifest", "{d}/sources.yaml", "--pdf-dir", "{d}/pdfs")
SYNTH = ("compass-data", "synth", "ocr", "--pdf-dir", "{d}/pdfs", "--out", "{d}/out")
DISTILL = ("compass-data", "distill", "--sources", "{d}/math.yaml", "--out", "{d}/out")


def _policy(text: str | bytes, *expect: str) -> dict:
    """A gate run on the fixture's results with this policy file."""
    return dict(
        argv=GATE_POLICY,
        files={"gate.yaml": text},
        prepare=_copy_runs,
        expect=("gate.yaml", *expect),
    )


CASES = [
    # --- compass-gate: policy files (unknown keys, types, enums, ranges, syntax) ---------------
    Case("gate-policy-unknown-key", **_policy("max_dorp: 0.1\n", "max_dorp")),
    Case("gate-policy-wrong-type", **_policy("max_drop: lots\n", "max_drop")),
    Case(
        "gate-policy-bad-boolean", **_policy('require_significant: "yes"\n', "require_significant")
    ),
    Case("gate-policy-nan", **_policy("max_drop: .nan\n", "max_drop")),
    Case("gate-policy-malformed-yaml", **_policy("max_drop: [0.1\n", "YAML")),
    Case("gate-policy-not-utf8", **_policy(b"max_drop: 0.1 # \xff\xfe\n", "UTF-8")),
    Case("gate-policy-a-list", **_policy("- max_drop\n", "mapping")),
    Case(
        "gate-policy-rule-unknown-key",
        **_policy("benchmarks: {gsm8k: {maxdrop: 1}}\n", "gsm8k", "maxdrop"),
    ),
    Case(
        "gate-policy-rule-wrong-type",
        **_policy("benchmarks: {gsm8k: {ignore: 3}}\n", "gsm8k.ignore"),
    ),
    Case("gate-policy-rules-a-list", **_policy("benchmarks: [gsm8k]\n", "benchmarks")),
    Case("gate-policy-against-a-number", **_policy("against: 3\n", "against")),
    Case("gate-policy-negative-drop", **_policy("max_drop: -1\n", "max_drop")),
    Case("gate-policy-missing", GATE_POLICY, ("gate.yaml", "does not exist"), prepare=_copy_runs),
    # --- compass-gate: flags and report files -------------------------------------------------
    Case("gate-max-drop-nan", (*GATE, "--max-drop", "nan"), ("--max-drop",), prepare=_copy_runs),
    Case("gate-max-drop-text", (*GATE, "--max-drop", "abc"), ("--max-drop",), prepare=_copy_runs),
    Case("gate-max-drop-negative", (*GATE, "--max-drop", "-1"), ("max-drop",), prepare=_copy_runs),
    Case("gate-iters-zero", (*GATE, "--iters", "0"), ("--iters",), prepare=_copy_runs),
    Case("gate-iters-huge", (*GATE, "--iters", "1000000000"), ("--iters",), prepare=_copy_runs),
    Case("gate-level-two", (*GATE, "--level", "2"), ("--level",), prepare=_copy_runs),
    Case("gate-level-zero", (*GATE, "--level", "0"), ("--level",), prepare=_copy_runs),
    Case("gate-seed-negative", (*GATE, "--seed", "-1"), ("--seed",), prepare=_copy_runs),
    Case(
        "gate-bad-boolean-flag",
        (*GATE, "--require-significant=no"),
        ("require-significant",),
        prepare=_copy_runs,
    ),
    Case(
        "gate-one-phase",
        ("compass-gate", "--results", "{d}/runs", "--phases", "p0"),
        ("two phases",),
        prepare=_copy_runs,
    ),
    Case("gate-unknown-candidate", (*GATE, "--candidate", "p9"), ("p9",), prepare=_copy_runs),
    Case(
        "gate-missing-phase",
        ("compass-gate", "--results", "{d}/runs", "--phases", "p0", "p7"),
        ("p7",),
        prepare=_copy_runs,
    ),
    Case("gate-report-missing", ("compass-gate", "--report", "{d}/report.json"), ("report.json",)),
    Case(
        "gate-report-truncated",
        ("compass-gate", "--report", "{d}/report.json"),
        ("report.json",),
        files={"report.json": '{"phases": ["p0", '},
    ),
    Case(
        "gate-report-wrong-shape",
        ("compass-gate", "--report", "{d}/report.json"),
        ("report.json",),
        files={"report.json": "[1, 2]"},
    ),
    Case("gate-results-truncated", GATE, ("results_",), prepare=_corrupt_results),
    # --- compass-report ------------------------------------------------------------------------
    Case("report-out-is-results", (*REPORT, "--out", "{d}/runs"), ("--out",), prepare=_copy_runs),
    Case(
        "report-out-inside-results",
        (*REPORT, "--out", "{d}/runs/p0"),
        ("--out",),
        prepare=_copy_runs,
    ),
    Case("report-out-holds-results", (*REPORT, "--out", "{d}"), ("--out",), prepare=_copy_runs),
    Case(
        "report-out-is-a-file", REPORT_OUT, ("out",), files={"out": "a file\n"}, prepare=_copy_runs
    ),
    Case("report-out-foreign-folder", REPORT_OUT, ("out", "not empty"), prepare=_foreign_out),
    Case("report-iters-text", (*REPORT_OUT, "--iters", "many"), ("--iters",), prepare=_copy_runs),
    Case("report-level-one", (*REPORT_OUT, "--level", "1"), ("--level",), prepare=_copy_runs),
    Case(
        "report-duplicate-phase",
        ("compass-report", "--results", "{d}/runs", "--phases", "p0", "p0", "--out", "{d}/out"),
        ("p0",),
        prepare=_copy_runs,
    ),
    Case(
        "report-missing-results",
        ("compass-report", "--results", "{d}/none", "--phases", "p0", "p1", "--out", "{d}/out"),
        ("p0",),
    ),
    Case("report-results-truncated", REPORT_OUT, ("results_",), prepare=_corrupt_results),
    Case("report-samples-truncated", REPORT_OUT, ("samples_",), prepare=_corrupt_samples),
    Case(
        "report-policy-unknown-key",
        (*REPORT_OUT, "--policy", "{d}/gate.yaml"),
        ("gate.yaml", "max_dorp"),
        files={"gate.yaml": "max_dorp: 1\n"},
        prepare=_copy_runs,
    ),
    # --- compass-train: recipes and --set (each start imports torch: a few cases) ---------------
    Case(
        "train-unknown-key",
        TRAIN,
        ("recipe.yaml", "learning_rate"),
        prepare=lambda d: _recipe_with(d, "learning_rate: 1\n"),
    ),
    Case(
        "train-save-every-zero",
        (*TRAIN, "--set", "stages.save_every=0"),
        ("save_every",),
        prepare=lambda d: _recipe_with(d, ""),
    ),
    Case(
        "train-set-malformed",
        (*TRAIN, "--set", "seed=["),
        ("--set", "seed"),
        prepare=lambda d: _recipe_with(d, ""),
    ),
    Case(
        "train-unknown-preset",
        (*TRAIN, "--set", "model.preset=huge"),
        ("model.preset", "huge"),
        prepare=lambda d: _recipe_with(d, ""),
    ),
    Case(
        "train-record-image-escapes",
        TRAIN,
        ("records.jsonl", "images[0]", "outside"),
        prepare=_escaping_images,
    ),
    # --- compass-eval ----------------------------------------------------------------------------
    Case(
        "eval-limit-zero",
        (*EVAL_TASK[:-1], "0"),
        ("--limit",),
        prepare=_checkpoint_copy,
    ),
    Case(
        "eval-device-tpu",
        (*EVAL_TASK, "--device", "tpu"),
        ("device", "tpu"),
        prepare=_checkpoint_copy,
    ),
    Case(
        "eval-unknown-task",
        (*EVAL, "--tasks", "no_such_task"),
        ("no_such_task",),
        prepare=_checkpoint_copy,
    ),
    Case(
        "eval-out-is-checkpoints",
        (
            "compass-eval",
            "--checkpoints",
            "{d}/ckpt",
            "--phases",
            "p0",
            "--out",
            "{d}/ckpt",
            "--tasks",
            "cma_basics",
            "--limit",
            "1",
        ),
        ("--out",),
        prepare=_checkpoint_copy,
    ),
    Case("eval-truncated-weights", EVAL_TASK, ("model.safetensors",), prepare=_truncated_weights),
    # --- lm_eval --model compass: checkpoints and model_args -------------------------------------
    Case(
        "lm-eval-pickle-allow-no",
        (*LM_EVAL, "--model_args", "pretrained={d}/ckpt/p0,allow_pickle=no"),
        ("allow_pickle",),
        prepare=_pickle_only,
    ),
    Case(
        "lm-eval-absurd-header",
        (*LM_EVAL, "--model_args", "pretrained={d}/ckpt/p0"),
        ("model.safetensors",),
        prepare=_absurd_header,
    ),
    Case(
        "lm-eval-max-length-text",
        (*LM_EVAL, "--model_args", "pretrained={d}/ckpt/p0,max_length=abc"),
        ("max_length",),
        prepare=_checkpoint_copy,
    ),
    # --- compass-data ----------------------------------------------------------------------------
    Case(
        "data-import-symlink",
        ("compass-data", "import", "jp_fin_harness", "{d}/copy"),
        ("symbolic link",),
        prepare=_data_with_link,
    ),
    Case(
        "data-import-nothing",
        ("compass-data", "import", "jp_fin_harness", "{d}"),
        ("holds none",),
        files={"notes.txt": "x"},
    ),
    Case(
        "data-pdfs-manifest-unknown-key",
        PDFS,
        ("sources.yaml", "mirror"),
        files={"sources.yaml": _manifest(extra="mirror: yes\n")},
        prepare=_pdf_dir,
    ),
    Case(
        "data-pdfs-manifest-wrong-type",
        PDFS,
        ("sources.yaml", "url_prefixes"),
        files={
            "sources.yaml": _manifest().replace('["https://compass-demo.invalid/reports/"]', "7")
        },
        prepare=_pdf_dir,
    ),
    Case(
        "data-pdfs-manifest-missing-key",
        PDFS,
        ("sources.yaml", "licence"),
        files={"sources.yaml": _manifest().replace("    licence: CC0-1.0\n", "")},
        prepare=_pdf_dir,
    ),
    Case(
        "data-pdfs-path-escapes",
        PDFS,
        ("../secret.pdf", "outside"),
        files={
            "sources.yaml": _manifest()
            + "  - path: ../secret.pdf\n    url: https://compass-demo.invalid/reports/s.pdf\n",
            "secret.pdf": "x",
        },
        prepare=_pdf_dir,
    ),
    Case(
        "data-pdfs-link-escapes",
        PDFS,
        ("linked.pdf",),
        files={
            "sources.yaml": _manifest()
            + "  - path: linked.pdf\n    url: https://compass-demo.invalid/reports/l.pdf\n"
        },
        prepare=_outside_link,
    ),
    Case(
        "data-pdfs-url-dot-dot",
        PDFS,
        ("allow-list",),
        files={
            "sources.yaml": _manifest(url="https://compass-demo.invalid/reports/../../evil/x.pdf")
        },
        prepare=_pdf_dir,
    ),
    Case(
        "data-pdfs-manifest-malformed",
        PDFS,
        ("sources.yaml", "YAML"),
        files={"sources.yaml": "sources: [\n"},
        prepare=_pdf_dir,
    ),
    Case("data-pdfs-manifest-missing", PDFS, ("sources.yaml", "does not exist"), prepare=_pdf_dir),
    Case(
        "data-synth-longest-side-zero",
        (*SYNTH, "--teacher", "tiny", "--longest-side", "0"),
        ("--longest-side",),
        prepare=_pdf_dir,
    ),
    Case(
        "data-synth-concurrency-zero",
        (*SYNTH, "--teacher", "tiny", "--concurrency", "0"),
        ("--concurrency",),
        prepare=_pdf_dir,
    ),
    Case(
        "data-synth-not-indexed",
        (*SYNTH, "--teacher", "tiny"),
        ("compass_pdfs.json",),
        prepare=_pdf_dir,
    ),
    Case(
        "data-synth-teacher-seed-text",
        (*SYNTH, "--teacher", "tiny:abc"),
        ("--teacher", "tiny:abc"),
        prepare=_indexed_pdf_dir,
    ),
    Case(
        "data-distill-n-zero",
        (*DISTILL, "--teacher", "tiny", "--n", "0"),
        ("--n",),
        files={"math.yaml": MATH},
    ),
    Case(
        "data-distill-timeout-zero",
        (*DISTILL, "--teacher", "tiny", "--n", "2", "--timeout", "0"),
        ("--timeout",),
        files={"math.yaml": MATH},
    ),
    Case(
        "data-distill-sources-unknown-key",
        (*DISTILL, "--teacher", "tiny", "--n", "2"),
        ("math.yaml", "quota_"),
        files={"math.yaml": MATH + "    quota_: 3\n"},
    ),
    Case(
        "data-distill-sources-wrong-type",
        (*DISTILL, "--teacher", "tiny", "--n", "2"),
        ("math.yaml", "weight"),
        files={"math.yaml": MATH + "    weight: heavy\n"},
    ),
    Case(
        "data-distill-sources-negative-quota",
        (*DISTILL, "--teacher", "tiny", "--n", "2"),
        ("math.yaml", "quota"),
        files={"math.yaml": MATH + "    quota: -3\n"},
    ),
    Case(
        "data-distill-sources-missing-licence",
        (*DISTILL, "--teacher", "tiny", "--n", "2"),
        ("math.yaml", "licence"),
        files={"math.yaml": MATH.replace("    licence: MIT\n", "")},
    ),
    Case(
        "data-distill-sources-bad-regex",
        (*DISTILL, "--teacher", "tiny", "--n", "2"),
        ("math.yaml", "answer_regex"),
        files={"math.yaml": MATH.replace('"####\\\\s*(\\\\S+)\\\\s*$"', '"(unclosed"')},
    ),
    Case(
        "data-inspect-samples-negative",
        ("compass-data", "inspect", "{d}", "--samples", "-1"),
        ("--samples",),
    ),
]


def tree_digest(root: Path) -> str:
    """Every path under `root` with its kind, mode and content (a link: its target)."""
    digest = hashlib.sha256()
    for folder, folders, files in os.walk(root):
        folders.sort()
        for name in sorted(folders + files):
            path = Path(folder, name)
            relative = path.relative_to(root).as_posix()
            info = path.lstat()
            if path.is_symlink():
                content = os.readlink(path).encode()
            elif path.is_file():
                content = hashlib.sha256(path.read_bytes()).digest()
            else:
                content = b""
            digest.update(f"{relative}\0{info.st_mode}\0".encode() + content + b"\0")
    return digest.hexdigest()


def _run_case(case: Case, root: Path) -> tuple[subprocess.CompletedProcess, str, str]:
    """(the finished command, the case folder's digest before it, and after)."""
    folder = root / case.id
    folder.mkdir()
    for name, content in case.files.items():
        target = folder / name
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content, encoding="utf-8")
    if case.prepare is not None:
        case.prepare(folder)
    before = tree_digest(folder)
    argv = [arg.replace("{d}", str(folder)) for arg in case.argv]
    result = subprocess.run(
        [str(VENV_BIN / argv[0]), *argv[1:]],
        cwd=folder,
        env=cli_env(HF_HOME=str(root / "hf-home")),
        capture_output=True,
        text=True,
        timeout=300,
    )
    return result, before, tree_digest(folder)


@pytest.fixture(scope="module")
def outcome(request, tmp_path_factory, tiny_checkpoint):
    """Runs every selected case once, WORKERS at a time, and returns the lookup."""
    _shared["checkpoint"] = tiny_checkpoint
    selected = [
        item.callspec.params["case"]
        for item in request.session.items
        if item.module is request.module and hasattr(item, "callspec")
    ]
    root = tmp_path_factory.mktemp("bad-input")
    with ThreadPoolExecutor(WORKERS) as pool:
        pending = {case.id: pool.submit(_run_case, case, root) for case in selected}
        outcomes = {name: future.result() for name, future in pending.items()}
    return outcomes.__getitem__


def substance(stderr: str) -> list[str]:
    """The stderr lines that are the command's own words (see _NOISE)."""
    return [
        line
        for line in stderr.splitlines()
        if line.strip() and not any(pattern.search(line) for pattern in _NOISE)
    ]


def _param(case: Case):
    marks = [pytest.mark.xfail(strict=True, reason=case.xfail)] if case.xfail else []
    return pytest.param(case, id=case.id, marks=marks)


def test_the_matrix_covers_every_command_with_enough_cases():
    commands = {case.argv[0] for case in CASES}
    assert commands == {
        "compass-gate",
        "compass-report",
        "compass-train",
        "compass-eval",
        "lm_eval",
        "compass-data",
    }
    assert len(CASES) >= 60
    assert len({case.id for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", [_param(case) for case in CASES])
def test_bad_input_is_one_line_exit_2_and_changes_nothing(case: Case, outcome):
    result, before, after = outcome(case.id)
    report = f"exit {result.returncode}\nstderr:\n{result.stderr[-3000:]}"
    assert "Traceback" not in result.stderr, report
    assert result.returncode == 2, report
    lines = substance(result.stderr)
    assert len(lines) == 1, report
    for word in case.expect:
        assert word in lines[0], report
    assert after == before, f"the case's folder changed\n{report}"


def test_the_line_filter_keeps_messages_and_drops_only_noise():
    stderr = (
        "usage: compass-gate [-h] [--results RESULTS]\n"
        "                    [--phases PHASE[=PATH] ...]\n"
        "2026-12-01:22:44:18 INFO     [_cli.run:392] Selected Tasks: ['cma_basics']\n"
        "compass-gate: error: argument --iters: invalid int value: 'x'\n"
        "\n"
    )
    assert substance(stderr) == ["compass-gate: error: argument --iters: invalid int value: 'x'"]
    assert substance("error: one\n  Traceback-free detail\nerror: two\n") == [
        "error: one",
        "error: two",
    ]
