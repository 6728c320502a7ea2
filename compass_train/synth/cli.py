"""The data commands (`compass-data pdfs|synth|distill|inspect`): flags → typed configs → pipeline.
Bad input is one line on stderr and exit status 2."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from compass_model.errors import CompassInputError
from compass_model.typed import add_flags, from_flags
from compass_model.version import add_version_flag
from compass_train.synth.config import DistillConfig, SynthConfig, TeacherConfig
from compass_train.synth.generators import GENERATORS


def _pdfs(args: argparse.Namespace) -> None:
    from compass_train.synth.sources import index_pdfs, load_manifest, write_index

    manifest = load_manifest(args.manifest)
    pdfs = index_pdfs(manifest, args.pdf_dir)
    path = write_index(args.pdf_dir, manifest, pdfs)
    for pdf in pdfs:
        print(f"{pdf.path}: {pdf.pages} pages, {pdf.source} ({pdf.licence}), {pdf.url}")
    print(f"indexed {len(pdfs)} PDFs, {sum(p.pages for p in pdfs)} pages → {path}")


def _report(card: dict) -> None:
    rejects = ", ".join(f"{reason} {count}" for reason, count in card["rejects"].items())
    print(
        f"{card['out_dir']}: {card['total_records']} records in {card['shards']} shards; "
        f"{card['total_rejects']} rejected ({rejects or 'none'}); "
        f"{card['requests_sent']} teacher requests sent, {card['cache_hits']} answered from the cache"
    )


def _synth(args: argparse.Namespace) -> None:
    from compass_train.synth.pipeline import run_synth

    _report(
        run_synth(args.generator, from_flags(SynthConfig, args), from_flags(TeacherConfig, args))
    )


def _distill(args: argparse.Namespace) -> None:
    from compass_train.synth.pipeline import run_distill

    _report(run_distill(from_flags(DistillConfig, args), from_flags(TeacherConfig, args)))


def _inspect(args: argparse.Namespace) -> None:
    from compass_train.synth.inspection import inspect_dataset

    print(inspect_dataset(args.path, args.samples, args.seed))


def register(commands: argparse._SubParsersAction) -> None:
    """Adds `pdfs`, `synth`, `distill` and `inspect` to another CLI's subcommands (`compass-data`);
    run the parsed arguments with `run(args)`."""
    pdfs = commands.add_parser("pdfs", help="index local PDFs against an allow-list of sources")
    pdfs.add_argument("--manifest", required=True, help="sources YAML: allowed sources and files")
    pdfs.add_argument("--pdf-dir", required=True, help="the folder holding the PDFs")
    pdfs.set_defaults(run=_pdfs)

    synth = commands.add_parser("synth", help="page data from the indexed PDFs with a teacher VLM")
    synth.add_argument("generator", choices=sorted(GENERATORS))
    add_flags(synth, SynthConfig)
    add_flags(synth, TeacherConfig)
    synth.set_defaults(run=_synth)

    distill = commands.add_parser("distill", help="chain-of-thought data from math problems")
    add_flags(distill, DistillConfig)
    add_flags(distill, TeacherConfig)
    distill.set_defaults(run=_distill)

    inspect = commands.add_parser("inspect", help="counts, rejects by reason, samples")
    inspect.add_argument("path", help="a dataset folder, e.g. data/p1/vqa/")
    inspect.add_argument("--samples", type=int, default=3)
    inspect.add_argument("--seed", type=int, default=0)
    inspect.set_defaults(run=_inspect)


def run(args: argparse.Namespace) -> int:
    """Exit status: 0 done, 2 bad input (one line on stderr), 130 interrupted (rerun resumes)."""
    command: Callable[[argparse.Namespace], None] = args.run
    try:
        command(args)
    except CompassInputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: run the same command again to resume", file=sys.stderr)
        return 130
    return 0


def main(argv: list[str] | None = None, prog: str = "compass-data") -> int:
    parser = argparse.ArgumentParser(prog=prog, description="Training data from public documents.")
    add_version_flag(parser)
    register(parser.add_subparsers(dest="command", required=True))
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
