"""The plain `lm_eval` command finds and runs the `compass` model, in real subprocesses."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from clitools import REPO, VENV_BIN, cli_env, run_cli

from compass_model.checkpoint import export_language_model, load_checkpoint


def _results(out: Path) -> dict:
    (path,) = out.rglob("results_*.json")
    return json.loads(path.read_text())


def _accuracies(results: dict) -> dict[str, float]:
    return {task: metrics["acc,none"] for task, metrics in results["results"].items()}


def test_startup_installs_the_hook_without_importing_lm_eval(tmp_path):
    probe = (
        "import sys; from compass_eval.lm_eval_hook import _PostImportFinder; "
        "print('lm_eval' in sys.modules, any(isinstance(f, _PostImportFinder) for f in sys.meta_path))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["False", "True"]


def test_lm_eval_runs_the_tiny_model_on_the_smoke_tasks(tmp_path):
    run = run_cli(
        [
            "lm_eval",
            "--model",
            "compass",
            "--tasks",
            "compass_smoke",
            "--limit",
            "2",
            "--output_path",
            str(tmp_path / "out"),
        ],
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert "scores mean NOTHING" in run.stderr
    accuracies = _accuracies(_results(tmp_path / "out"))
    assert {"compass_smoke_text", "compass_smoke_image"} <= set(accuracies)


def test_phase_label_and_manifest_reach_the_results_and_hf_still_works(tmp_path, tiny_checkpoint):
    run = run_cli(
        [
            "lm_eval",
            "--model",
            "compass",
            "--model_args",
            f"pretrained={tiny_checkpoint},phase=p1",
            "--tasks",
            "compass_smoke_text",
            "--limit",
            "2",
            "--output_path",
            str(tmp_path / "compass"),
        ],
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    config = _results(tmp_path / "compass")["config"]
    assert config["compass_phase"] == "p1"
    assert config["compass_manifest"] == {"phase": "p0", "parent": None}

    checkpoint = load_checkpoint(tiny_checkpoint)
    language_model = export_language_model(checkpoint.model, checkpoint.processor, tmp_path / "lm")
    run = run_cli(
        [
            "lm_eval",
            "--model",
            "hf",
            "--model_args",
            f"pretrained={language_model}",
            "--tasks",
            "compass_smoke_text",
            "--limit",
            "2",
            "--device",
            "cpu",
            "--output_path",
            str(tmp_path / "hf"),
        ],
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert "compass_smoke_text" in _results(tmp_path / "hf")["results"]


def _broken_inputs(tmp_path: Path, tiny_checkpoint: Path) -> dict[str, tuple[list[str], str]]:
    no_weights = tmp_path / "no_weights"
    no_weights.mkdir()
    (no_weights / "config.json").write_text((tiny_checkpoint / "config.json").read_text())
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    (pickled / "config.json").write_text((tiny_checkpoint / "config.json").read_text())
    (pickled / "pytorch_model.bin").write_bytes(b"not loaded")
    smoke = tmp_path / "smoke"
    smoke.mkdir()
    record = {
        "id": "x1",
        "image": "images/gone.png",
        "question": "色は",
        "choices": ["赤", "青"],
        "answer": 0,
    }
    (smoke / "image.jsonl").write_text(json.dumps(record, ensure_ascii=False) + "\n")
    text_task = ["--tasks", "compass_smoke_text"]
    return {
        "missing directory": (
            ["--model_args", f"pretrained={tmp_path / 'nowhere'}", *text_task],
            "does not exist",
        ),
        "no weights": (["--model_args", f"pretrained={no_weights}", *text_task], "no weights"),
        "pickle only": (["--model_args", f"pretrained={pickled}", *text_task], "pickle weights"),
        "unknown key": (
            ["--model_args", "colour=red", *text_task],
            "--model_args: unknown key 'colour'",
        ),
        "missing image": (
            [
                "--tasks",
                "compass_smoke_image",
                "--metadata",
                json.dumps({"smoke_data_dir": str(smoke)}),
            ],
            "gone.png",
        ),
    }


@pytest.mark.parametrize(
    "case", ["missing directory", "no weights", "pickle only", "unknown key", "missing image"]
)
def test_bad_input_is_one_line_and_exit_2(case, tmp_path, tiny_checkpoint):
    args, expected = _broken_inputs(tmp_path, tiny_checkpoint)[case]
    run = run_cli(["lm_eval", "--model", "compass", "--limit", "1", *args], cwd=tmp_path)
    assert run.returncode == 2, run.stderr[-2000:]
    assert "Traceback" not in run.stderr
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and expected in last, last


def test_two_processes_under_accelerate_match_one(tmp_path, tiny_checkpoint):
    common = [
        "--model",
        "compass",
        "--model_args",
        f"pretrained={tiny_checkpoint}",
        "--tasks",
        "compass_smoke",
        "--limit",
        "4",
    ]
    single = run_cli(["lm_eval", *common, "--output_path", str(tmp_path / "one")], cwd=tmp_path)
    assert single.returncode == 0, single.stderr[-2000:]
    # accelerate 1.15 starts a single process for `--cpu --num_processes 2`; the DDP config file
    # starts two, with gloo on a machine without GPUs.
    double = run_cli(
        [
            "accelerate",
            "launch",
            "--config_file",
            str(REPO / "recipes" / "accelerate" / "ddp.yaml"),
            "--num_processes",
            "2",
            "--mixed_precision",
            "no",
            "-m",
            "lm_eval",
            *common,
            "--output_path",
            str(tmp_path / "two"),
        ],
        cwd=tmp_path,
    )
    assert double.returncode == 0, double.stderr[-3000:]
    one, two = _results(tmp_path / "one"), _results(tmp_path / "two")
    assert (one["config"]["compass_processes"], two["config"]["compass_processes"]) == (1, 2)
    assert _accuracies(two) == _accuracies(one)
    assert two["config"]["compass_manifest"]["phase"] == "p0"


def test_wheel_ships_tasks_and_works_from_a_plain_install(tmp_path):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path / "dist"),
            str(REPO),
        ],
        check=True,
        capture_output=True,
        env=cli_env(),
    )
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "compass_eval/_tasks/compass_smoke/compass_smoke_text.yaml" in names
    assert "compass_lm_eval_hook.pth" in names
    assert any(name.startswith("compass_eval/_reports/") for name in names)

    # A fresh environment that has the dependencies but not this checkout: only the wheel.
    env_dir = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], check=True)
    python = env_dir / "bin" / "python"
    site = Path(
        subprocess.check_output(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True
        ).strip()
    )
    dependencies = Path(
        subprocess.check_output(
            [
                VENV_BIN / "python",
                "-c",
                "import sysconfig; print(sysconfig.get_paths()['purelib'])",
            ],
            text=True,
        ).strip()
    )
    (site / "dependencies.pth").write_text(f"{dependencies}\n")
    subprocess.run(
        [
            VENV_BIN / "python",
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-index",
            "--target",
            str(site),
            str(wheel),
        ],
        check=True,
        capture_output=True,
        env=cli_env(),
    )
    run = subprocess.run(
        [
            python,
            "-m",
            "lm_eval",
            "--model",
            "compass",
            "--tasks",
            "compass_smoke_text",
            "--limit",
            "1",
            "--output_path",
            str(tmp_path / "out"),
        ],
        cwd=tmp_path,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    where = subprocess.check_output(
        [python, "-c", "import compass_eval; print(compass_eval.__file__)"],
        cwd=tmp_path,
        text=True,
        env=cli_env(),
    )
    assert where.startswith(str(site))
