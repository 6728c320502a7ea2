"""Pages per second through the synthetic-data pipeline (render → request → validate → write) at
concurrency 1 and 16, against a loopback OpenAI-compatible server in another process that answers
at once (or after `--latency` seconds, like a real teacher). Prints the ratio; the goal is ≥ 8×
with a teacher that takes time, i.e. the pipeline is bound by the teacher, not by itself.

    python benchmarks/synth_throughput.py [--pages 256] [--latency 0 0.05]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml

from compass_train.demo_data.report_pdfs import make_report_pdf
from compass_train.synth.config import SynthConfig, TeacherConfig
from compass_train.synth.pipeline import run_synth
from compass_train.synth.server import TeacherServer
from compass_train.synth.sources import (
    IndexedPdf,
    index_pdfs,
    load_manifest,
    read_index,
    write_index,
)
from compass_train.synth.teacher import TeacherRequest
from compass_train.synth.text_layer import ExtractiveTeacher

ROWS = 20  # table rows per page: a page's worth of text to transcribe


def bench_tables(pages: int) -> list[list[tuple[str, int]]]:
    """One table per page, every page's figures different (the teacher finds pages by image)."""
    return [
        [(f"項目{row + 1}", 1000 + 17 * page + row) for row in range(ROWS)] for page in range(pages)
    ]


class DelayedTeacher(ExtractiveTeacher):
    """Transcribes a page from its text layer (the OCR passes validation, so every page goes the
    whole way to a written record), after a fixed latency like a real model's."""

    def __init__(self, pdf_dir: Path, pdfs: list[IndexedPdf], latency: float) -> None:
        super().__init__(pdf_dir, pdfs)
        self.latency = latency

    def complete(self, request: TeacherRequest) -> str:
        if self.latency:
            threading.Event().wait(self.latency)
        return super().complete(request)


def serve(pdf_dir: Path, latency: float, urls: multiprocessing.Queue) -> None:
    with TeacherServer(DelayedTeacher(pdf_dir, read_index(pdf_dir)[0], latency)) as server:
        urls.put(server.url)
        threading.Event().wait()


def pages_per_second(pdf_dir: Path, url: str, concurrency: int, work: Path, pages: int) -> float:
    out = work / f"out-{concurrency}-{time.monotonic_ns()}"
    synth = SynthConfig(pdf_dir=pdf_dir, out=out)
    teacher = TeacherConfig(teacher=url, concurrency=concurrency, retries=0)
    started = time.perf_counter()
    card = run_synth("ocr", synth, teacher)
    elapsed = time.perf_counter() - started
    assert card["total_records"] == pages, card["rejects"]
    return pages / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=256)
    parser.add_argument("--latency", type=float, nargs="+", default=[0.0, 0.05])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        pdf_dir = work / "pdfs"
        pdf_dir.mkdir()
        make_report_pdf(pdf_dir / "bench.pdf", "予算の概要", bench_tables(args.pages))
        manifest = work / "sources.yaml"
        manifest.write_text(
            yaml.safe_dump(
                {
                    "sources": [
                        {
                            "id": "mof",
                            "agency": "財務省",
                            "url_prefixes": ["https://www.mof.go.jp/"],
                            "licence": "PDL-1.0",
                        }
                    ],
                    "files": [{"path": "bench.pdf", "url": "https://www.mof.go.jp/bench.pdf"}],
                },
                allow_unicode=True,
            ),
            encoding="utf-8",
        )
        loaded = load_manifest(manifest)
        write_index(pdf_dir, loaded, index_pdfs(loaded, pdf_dir))
        print(
            f"{args.pages} pages, OCR generator, render at 384 px, loopback teacher in its own "
            f"process; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
        )
        print(f"{'teacher latency':>16} {'c=1 pages/s':>12} {'c=16 pages/s':>13} {'ratio':>6}")
        for latency in args.latency:
            urls: multiprocessing.Queue = multiprocessing.Queue()
            server = multiprocessing.Process(
                target=serve, args=(pdf_dir, latency, urls), daemon=True
            )
            server.start()
            try:
                url = urls.get(timeout=60)
                serial = pages_per_second(pdf_dir, url, 1, work, args.pages)
                parallel = pages_per_second(pdf_dir, url, 16, work, args.pages)
            finally:
                server.terminate()
                server.join()
            print(
                f"{latency * 1000:>14.0f}ms {serial:>12.1f} {parallel:>13.1f} {parallel / serial:>5.1f}×"
            )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
