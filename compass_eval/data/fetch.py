"""Downloads each family's public files into the data root (needs network access)."""

from __future__ import annotations

import io
import json
import urllib.request
import zipfile
from collections.abc import Callable
from pathlib import Path

from compass_eval.data import edinet, gsm8k, jp_fin_harness

HARNESS_RAW = (
    "https://raw.githubusercontent.com/pfnet-research/japanese-lm-fin-harness/main/"
    "jlm_fin_eval/datasets/"
)
HARNESS_FILES = {
    "cma_basics.json": "cma_basics/data.json",
    "fp2.json": "fp2/data.json",
    "security_sales_1.json": "security_sales_1/data.json",
    "CPA_AUDIT.xlsx": "cpa/CPA_AUDIT.xlsx",
}
CHABSA_ZIP = (
    "https://s3-ap-northeast-1.amazonaws.com/dev.tech-sketch.jp/chakki/public/chABSA-dataset.zip"
)
EDINET_HUB = "SakanaAI/EDINET-Bench"
GSM8K_HUB = ("openai/gsm8k", "main")
TIMEOUT_S = 30


class FetchError(RuntimeError):
    """A download failed; the message names what and where from."""


def _download(url: str) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
            return response.read()
    except OSError as error:
        raise FetchError(f"cannot download {url} ({error})") from error


def _hub_split(path: str, name: str, split: str) -> list[dict]:
    import datasets

    try:
        return list(datasets.load_dataset(path, name, split=split))
    except Exception as error:  # the hub client raises many unrelated types when offline
        raise FetchError(
            f"cannot download {path}/{name} from the Hugging Face hub ({error})"
        ) from error


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")


def fetch_jp_fin_harness(root: Path) -> None:
    target = root / jp_fin_harness.FAMILY
    target.mkdir(parents=True, exist_ok=True)
    for name, remote in HARNESS_FILES.items():
        (target / name).write_bytes(_download(HARNESS_RAW + remote))
    with zipfile.ZipFile(io.BytesIO(_download(CHABSA_ZIP))) as archive:
        archive.extractall(target)
    if not (target / jp_fin_harness.CHABSA_DIR).is_dir():
        raise FetchError(f"{CHABSA_ZIP} did not hold a {jp_fin_harness.CHABSA_DIR}/ folder")


def fetch_edinet(root: Path) -> None:
    for task in edinet.TASKS:
        _write_jsonl(root / edinet.relative_file(task), _hub_split(EDINET_HUB, task, "test"))


def fetch_gsm8k(root: Path) -> None:
    for split in gsm8k.SPLITS:
        _write_jsonl(root / gsm8k.relative_file(split), _hub_split(*GSM8K_HUB, split))


FETCHERS: dict[str, Callable[[Path], None]] = {
    edinet.FAMILY: fetch_edinet,
    gsm8k.FAMILY: fetch_gsm8k,
    jp_fin_harness.FAMILY: fetch_jp_fin_harness,
}
