"""Downloads each family's public files into the data root (needs network access), all of a
family's files or none of them."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import tempfile
import urllib.request
import zipfile
from collections.abc import Callable, Iterator
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
GSM8K_HUB = "openai/gsm8k"
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
    """One split of a hub dataset (or of a local folder laid out like its hub repository)."""
    import datasets

    with tempfile.TemporaryDirectory() as cache:  # nothing of the download outlives the fetch
        try:
            return list(datasets.load_dataset(path, name, split=split, cache_dir=cache))
        except Exception as error:  # the hub client raises many unrelated types when offline
            raise FetchError(
                f"cannot load {path}/{name} split {split} from the Hugging Face hub ({error})"
            ) from error


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")


@contextlib.contextmanager
def staged(root: Path) -> Iterator[Path]:
    """A scratch folder inside the data root; its files move into the root only when the block
    ends without an error, so a fetch that fails midway leaves the root as it was."""
    created = not root.exists()
    root.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=".compass-fetch-", dir=root))
    try:
        yield stage
    except BaseException:
        shutil.rmtree(root if created else stage, ignore_errors=True)
        raise
    for file in sorted(path for path in stage.rglob("*") if path.is_file()):
        target = root / file.relative_to(stage)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(file, target)
    shutil.rmtree(stage, ignore_errors=True)


def fetch_jp_fin_harness(stage: Path) -> None:
    target = stage / jp_fin_harness.FAMILY
    target.mkdir(parents=True, exist_ok=True)
    for name, remote in HARNESS_FILES.items():
        (target / name).write_bytes(_download(HARNESS_RAW + remote))
    with zipfile.ZipFile(io.BytesIO(_download(CHABSA_ZIP))) as archive:
        archive.extractall(target)
    if not (target / jp_fin_harness.CHABSA_DIR).is_dir():
        raise FetchError(f"{CHABSA_ZIP} did not hold a {jp_fin_harness.CHABSA_DIR}/ folder")


def fetch_edinet(stage: Path, hub: str = EDINET_HUB) -> None:
    """Every task's evaluated split (industry: train, the only one it has)."""
    for task, split in edinet.SPLITS.items():
        _write_jsonl(stage / edinet.relative_file(task), _hub_split(hub, task, split))


def fetch_gsm8k(stage: Path, hub: str = GSM8K_HUB) -> None:
    for split in gsm8k.SPLITS:
        _write_jsonl(stage / gsm8k.relative_file(split), _hub_split(hub, "main", split))


FETCHERS: dict[str, Callable[..., None]] = {
    edinet.FAMILY: fetch_edinet,
    gsm8k.FAMILY: fetch_gsm8k,
    jp_fin_harness.FAMILY: fetch_jp_fin_harness,
}
HUB_FAMILIES = (edinet.FAMILY, gsm8k.FAMILY)  # those that `--from` can point elsewhere


def fetch_family(family: str, root: Path, hub: str | None = None) -> None:
    """Downloads a family into `root`, all files or none; `hub` replaces the hub dataset id (a
    mirror id, or a local folder laid out like the hub repository)."""
    with staged(root) as stage:
        if hub is None:
            FETCHERS[family](stage)
        else:
            FETCHERS[family](stage, hub)
