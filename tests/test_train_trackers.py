"""The trackers keep the whole run: one real `compass-train run` of the two-phase test chain
logging to TensorBoard, W&B (offline) and MLflow (no tracking URI) at once, read back from the
files each tracker wrote."""

from __future__ import annotations

import importlib.util
import os
import subprocess
from pathlib import Path

import pytest
import yaml
from clitools import REPO, VENV_BIN, cli_env

from compass_train.recipe import load_recipe
from compass_train.trackers import DEFAULT_LOG_DIR, log_folder

CHAIN = REPO / "tests" / "fixtures" / "train" / "chain.yaml"
# p1/s1 trains two parameter groups at their own rates; p3/s1 puts LoRA (group llm) at 1e-2.
OVERRIDES = [
    "p1.s1.train=[projector, vision]",
    "p1.s1.freeze=[llm]",
    "p1.s1.lr_groups={projector: 1.0e-2, vision: 1.0e-3}",
    "report_to=[tensorboard, wandb, mlflow]",
]
STEPS = 6  # two stages of max_steps 3


def _missing(name: str) -> pytest.MarkDecorator:
    return pytest.mark.skipif(
        importlib.util.find_spec(name) is None, reason=f"{name} not installed"
    )


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> tuple[Path, str]:
    """The run's log folder and everything it printed."""
    tmp = tmp_path_factory.mktemp("trackers")
    logs = tmp / "logs"
    env = cli_env(WANDB_MODE="offline")
    for variable in ("MLFLOW_TRACKING_URI", "WANDB_DIR"):
        env.pop(variable, None)
    sets = [item for o in OVERRIDES + [f"log_dir={logs}"] for item in ("--set", o)]
    result = subprocess.run(
        [str(VENV_BIN / "compass-train"), "run", str(CHAIN), "--out", str(tmp / "ckpt"), *sets],
        cwd=tmp,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    return logs, output


def _tensorboard(logs: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(logs / "test-chain"), size_guidance={"scalars": 0, "tensors": 0})
    events.Reload()
    return events


@pytest.mark.slow
@_missing("tensorboard")
def test_tensorboard_steps_increase_strictly_across_stages(run) -> None:
    events = _tensorboard(run[0])
    assert [e.step for e in events.Scalars("train/loss")] == list(range(1, STEPS + 1))
    assert [e.value for e in events.Scalars("train/stage_step")] == [1, 2, 3, 1, 2, 3]
    phases = events.Tensors("train/phase/text_summary")
    assert [(e.step, e.tensor_proto.string_val[0]) for e in phases] == [(1, b"p1"), (4, b"p3")]


@pytest.mark.slow
@_missing("tensorboard")
def test_tensorboard_has_one_learning_rate_series_per_parameter_group(run) -> None:
    events = _tensorboard(run[0])
    lr = {t.removeprefix("train/lr/") for t in events.Tags()["scalars"] if "/lr/" in t}
    assert lr == {"projector", "vision", "llm"}
    first = {group: events.Scalars(f"train/lr/{group}")[0] for group in lr}
    # warmup 0: a stage's first step runs at the recipe's rate (cosine decay follows).
    assert {g: (e.step, e.value) for g, e in first.items()} == {
        "projector": (1, pytest.approx(1e-2)),
        "vision": (1, pytest.approx(1e-3)),
        "llm": (4, pytest.approx(1e-2)),
    }


@pytest.mark.slow
@_missing("tensorboard")
def test_tensorboard_holds_the_resolved_recipe_as_text(run) -> None:
    (entry,) = _tensorboard(run[0]).Tensors("recipe/text_summary")
    text = entry.tensor_proto.string_val[0].decode()
    assert text.startswith("```yaml\n") and text.endswith("```")
    logged = yaml.safe_load(text.removeprefix("```yaml\n").removesuffix("```"))
    p1_s1 = logged["phases"][0]["stages"][0]
    assert p1_s1["lr_groups"] == {"projector": 1e-2, "vision": 1e-3}
    assert p1_s1["max_steps"] == 3  # from stage_defaults: the recipe as resolved


@pytest.mark.slow
@_missing("wandb")
def test_wandb_offline_keeps_every_step(run) -> None:
    output = run[1]
    assert "monotonically increasing" not in output
    # W&B's closing "Run history" draws one glyph per point it kept.
    history = output.split("Run history:", 1)[1].split("Run summary:", 1)[0]
    (curve,) = [line for line in history.splitlines() if "train/stage_step " in line]
    assert len(curve.split()[-1]) == STEPS
    assert list((run[0] / "wandb").glob("offline-run-*/run-*.wandb"))


@pytest.mark.slow
@_missing("mlflow")
def test_mlflow_without_tracking_uri_logs_to_a_local_file_store(run, monkeypatch) -> None:
    logs, output = run
    store = (logs / "mlruns").resolve()
    notes = [line for line in output.splitlines() if "MLFLOW_TRACKING_URI" in line]
    assert notes == [
        "compass-train: note: MLFLOW_TRACKING_URI is not set; MLflow logs to the local file "
        f"store {store}"
    ]
    assert "Traceback" not in output
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    client = MlflowClient(tracking_uri=store.as_uri())
    experiment = client.get_experiment_by_name("test-chain")
    (found,) = client.search_runs([experiment.experiment_id])
    params = found.data.params
    assert params["p1.s1.lr_groups.vision"] == "0.001" and params["p3.s1.lora.r"] == "4"
    history = client.get_metric_history(found.info.run_id, "train/loss")
    assert [m.step for m in history] == list(range(1, STEPS + 1))


def test_log_dir_is_relative_to_the_recipe_and_defaults_beside_the_work(tmp_path: Path) -> None:
    assert log_folder(load_recipe(CHAIN), tmp_path) == tmp_path / DEFAULT_LOG_DIR
    assert log_folder(load_recipe(CHAIN, ["log_dir=runs"]), tmp_path) == CHAIN.parent / "runs"
    absolute = tmp_path / "tb"
    assert log_folder(load_recipe(CHAIN, [f"log_dir={absolute}"]), Path(os.sep)) == absolute
