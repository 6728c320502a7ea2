"""`compass-data`: list, download or import the benchmark data under the data root (compass_eval),
and the training-data verbs `pdfs`, `synth`, `distill`, `inspect` (compass_train) in one command.

Exit status: 0 done, 2 missing or unusable data (or a failed download), with a one-line message.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from compass_eval.data.fetch import HUB_FAMILIES, FetchError, fetch_family
from compass_eval.data.fingerprint import fingerprint_docs
from compass_eval.data.root import ENV_VAR, MissingDataError, data_root
from compass_eval.data.sources import FAMILIES, SOURCES, load_dataset
from compass_model import atomic
from compass_model.errors import CompassInputError
from compass_model.version import add_version_flag
from compass_train.synth import cli as training_data

EXIT_DATA = 2


def _status_row(name: str) -> dict[str, object]:
    source = SOURCES[name]
    row: dict[str, object] = {"source": name, "family": source.family, "split": source.split}
    try:
        docs = load_dataset(name)[source.split]
    except MissingDataError as missing:
        return {**row, "present": False, "missing": str(missing.path)}
    return {**row, "present": True, "n_docs": len(docs), "fingerprint": fingerprint_docs(docs)}


def status(as_json: bool) -> int:
    rows = [_status_row(name) for name in SOURCES]
    if as_json:
        print(json.dumps({"data_root": str(data_root()), "sources": rows}, indent=1))
        return 0
    print(f"data root: {data_root()}  (set ${ENV_VAR}; `demo` = bundled synthetic data)")
    for row in rows:
        if row["present"]:
            detail = f"present  {row['n_docs']:>6} docs  {row['fingerprint']}"
        else:
            detail = f"MISSING  {row['missing']}  -> compass-data fetch {row['family']}"
        print(f"{row['source']:<28} {row['split']:<6} {detail}")
    return 0


def fetch(family: str, hub: str | None = None, if_missing: bool = False) -> int:
    """`if_missing`: a family whose files are all there is left as it is, offline (a CI job whose
    data folder was restored from a cache downloads nothing; a fetch writes all files or none)."""
    if if_missing and all((data_root() / family / item).exists() for item in _expected(family)):
        print(f"compass-data: {family} is present under {data_root()}; nothing fetched")
        return 0
    if hub is not None and family not in HUB_FAMILIES:
        print(f"compass-data: fetch {family} has no --from (it is not on the hub)", file=sys.stderr)
        return EXIT_DATA
    try:
        fetch_family(family, data_root(), hub)
    except FetchError as error:
        print(
            f"compass-data: fetch {family} failed: {error}. Offline? Copy the files in with "
            f"`compass-data import {family} <path>`.",
            file=sys.stderr,
        )
        return EXIT_DATA
    return status(as_json=False)


def _expected(family: str) -> list[Path]:
    """Files and folders of a family, relative to the family folder."""
    files = (
        file.relative_to(family)
        for source in SOURCES.values()
        if source.family == family
        for file in source.files
    )
    return list(dict.fromkeys(files))  # tasks that read the same file name it once


def import_family(family: str, path: Path) -> int:
    """Checks a local copy (laid out like `<root>/<family>/`) in a staged copy of the family and
    only then puts it in place: a copy that does not load, or one holding links, changes nothing."""
    present = [item for item in _expected(family) if (path / item).exists()]
    if not present:
        wanted = ", ".join(str(item) for item in _expected(family))
        print(f"compass-data: {path} holds none of {wanted}", file=sys.stderr)
        return EXIT_DATA
    link = _first_link(path, present)
    if link is not None:
        print(
            f"compass-data: {link} is a symbolic link; import real files only "
            "(a link could bring any file of the machine into the data root)",
            file=sys.stderr,
        )
        return EXIT_DATA
    target = data_root() / family
    try:
        with atomic.staged_directory(target) as stage:
            if target.is_dir():
                shutil.copytree(target, stage, dirs_exist_ok=True)
            for item in present:
                destination = stage / item
                destination.parent.mkdir(parents=True, exist_ok=True)
                if (path / item).is_dir():
                    shutil.copytree(path / item, destination, dirs_exist_ok=True)
                else:
                    shutil.copy2(path / item, destination)
            _check_loads(family, stage)
    except CompassInputError as error:
        print(f"compass-data: {error}", file=sys.stderr)
        return EXIT_DATA
    return status(as_json=False)


def _first_link(path: Path, items: list[Path]) -> Path | None:
    for item in items:
        found = path / item
        for candidate in (found, *(found.rglob("*") if found.is_dir() else ())):
            if candidate.is_symlink():
                return candidate
    return None


def _check_loads(family: str, stage: Path) -> None:
    """Every source of the family loads from the staged folder (the data root pointed at it)."""
    with tempfile.TemporaryDirectory() as scratch:
        (Path(scratch) / family).symlink_to(stage, target_is_directory=True)
        previous = os.environ.get(ENV_VAR)
        os.environ[ENV_VAR] = scratch
        try:
            for name, source in SOURCES.items():
                if source.family != family:
                    continue
                try:
                    load_dataset(name)
                except MissingDataError:
                    continue
                except Exception as error:  # any parse failure: the copy is not in the schema
                    raise CompassInputError(f"imported {name} does not load: {error}") from None
        finally:
            if previous is None:
                os.environ.pop(ENV_VAR, None)
            else:
                os.environ[ENV_VAR] = previous


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="compass-data", description=__doc__)
    add_version_flag(parser)
    commands = parser.add_subparsers(dest="command", required=True)
    status_cmd = commands.add_parser(
        "status", help="each task's data: split, present, count, fingerprint"
    )
    status_cmd.add_argument("--json", action="store_true")
    fetch_cmd = commands.add_parser("fetch", help="download a family from its public source")
    fetch_cmd.add_argument("family", choices=FAMILIES)
    fetch_cmd.add_argument(
        "--from",
        dest="hub",
        metavar="DATASET",
        help="hub dataset id or local folder laid out like it (a mirror); default: the publisher's",
    )
    fetch_cmd.add_argument(
        "--if-missing",
        action="store_true",
        help="download only when a file of the family is missing",
    )
    import_cmd = commands.add_parser("import", help="copy a local copy of a family in, checked")
    import_cmd.add_argument("family", choices=FAMILIES)
    import_cmd.add_argument("path", type=Path)
    training_data.register(commands)
    args = parser.parse_args(argv)
    if args.command == "status":
        return status(args.json)
    if args.command == "fetch":
        return fetch(args.family, args.hub, args.if_missing)
    if args.command == "import":
        return import_family(args.family, args.path)
    return training_data.run(args)


if __name__ == "__main__":
    sys.exit(main())
