"""Experiment trackers of a `compass-train run` (TensorBoard, W&B, MLflow, through accelerate):
which ones, where they write, the run's configuration, and one step axis for the whole run.

Every optimiser step of the run is the run's next step, whatever stage or phase it belongs to, so
a tracker that needs increasing steps (W&B drops the others) keeps every stage's curve. A row
holds the loss, the learning rate of each parameter group (`vision`, `projector`, `llm`) and the
step within the stage; the phase and stage names are logged as text at the stage's first step.

Trackers start when the first stage trains, after every input check: bad input writes nothing.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import sys
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from compass_train.recipe import Recipe

if TYPE_CHECKING:
    from accelerate import Accelerator

# Where tracker files go when the recipe gives no `log_dir`: beside the run's work in progress.
DEFAULT_LOG_DIR = Path(".work") / "logs"
MLFLOW_STORE = "mlruns"


def installed_trackers(names: list[str]) -> list[str]:
    """The recipe's trackers that can be imported here; the others are named on stderr."""
    usable = []
    for name in names:
        if importlib.util.find_spec(name) is None:
            print(
                f"compass-train: warning: report_to {name}: not installed, skipped", file=sys.stderr
            )
        else:
            usable.append(name)
    return usable


def log_folder(recipe: Recipe, out: Path) -> Path:
    """The recipe's `log_dir` (relative paths from the recipe's folder), else `<out>/.work/logs`."""
    if recipe.log_dir is None:
        return out / DEFAULT_LOG_DIR
    folder = Path(recipe.log_dir).expanduser()
    return folder if folder.is_absolute() else Path(recipe.base_dir) / folder


def run_config(recipe: Recipe) -> dict[str, bool | int | float | str]:
    """The resolved recipe as flat scalars, the form TensorBoard's hparams and MLflow's params
    take: `seed`, `model.preset`, ..., and each stage's fields under `<phase>.<stage>.`."""
    raw = dataclasses.asdict(recipe)
    flat = _flatten({k: v for k, v in raw.items() if k != "phases"}, "")
    for phase in raw["phases"]:
        flat[f"{phase['name']}.parent"] = phase["parent"]
        for stage in phase["stages"]:
            fields = {k: v for k, v in stage.items() if k != "name"}
            flat.update(_flatten(fields, f"{phase['name']}.{stage['name']}."))
    return flat


def _flatten(values: dict[str, Any], prefix: str) -> dict[str, bool | int | float | str]:
    flat: dict[str, bool | int | float | str] = {}
    for key, value in values.items():
        if isinstance(value, dict) and value:
            flat.update(_flatten(value, f"{prefix}{key}."))
        elif isinstance(value, bool | int | float | str):
            flat[f"{prefix}{key}"] = value
        else:  # lists, empty mappings and None, as JSON text
            flat[f"{prefix}{key}"] = json.dumps(value, ensure_ascii=False)
    return flat


class RunLog:
    """What one run logs on one accelerator: its trackers, started on first use, and the number
    of steps logged so far, the offset of the next stage's steps."""

    def __init__(self, accelerator: Accelerator) -> None:
        self.accelerator = accelerator
        self.steps = 0
        self._pending: tuple[Recipe, list[str], Path] | None = None

    def start_later(self, recipe: Recipe, trackers: list[str], folder: Path) -> None:
        """Starts `trackers` (the accelerator's `log_with`) when the first stage trains."""
        self._pending = (recipe, trackers, folder) if trackers else None

    def stage(self, label: str, lr_groups: dict[str, int]) -> StageLog:
        """The log of stage `label` ("p1/s2"); `lr_groups` maps each parameter group to the
        index of an optimiser group holding it (the recipe gives learning rates by group)."""
        if self._pending is not None:
            self._start(*self._pending)
            self._pending = None
        return StageLog(self, label, lr_groups, first=self.steps)

    def _start(self, recipe: Recipe, trackers: list[str], folder: Path) -> None:
        accelerator = self.accelerator
        if not accelerator.is_main_process:
            return
        folder.mkdir(parents=True, exist_ok=True)
        if "mlflow" in trackers and not os.environ.get("MLFLOW_TRACKING_URI"):
            store = (folder / MLFLOW_STORE).resolve()
            # MLflow 3 keeps its file store for those who opt in; a database store would need
            # SQLAlchemy, which mlflow-skinny does not bring.
            os.environ["MLFLOW_TRACKING_URI"] = store.as_uri()
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
            print(
                f"compass-train: note: MLFLOW_TRACKING_URI is not set; MLflow logs to the local "
                f"file store {store}",
                flush=True,
            )
        init_kwargs = {} if os.environ.get("WANDB_DIR") else {"wandb": {"dir": str(folder)}}
        accelerator.init_trackers(recipe.name, config=run_config(recipe), init_kwargs=init_kwargs)
        if "tensorboard" in trackers:
            text = yaml.safe_dump(dataclasses.asdict(recipe), sort_keys=False, allow_unicode=True)
            writer = accelerator.get_tracker("tensorboard", unwrap=True)
            writer.add_text("recipe", f"```yaml\n{text}```", global_step=0)

    def log(self, numbers: dict[str, float], texts: dict[str, str], step: int) -> None:
        """One row at the run's `step`; MLflow, which keeps numbers only, gets the numbers."""
        self.steps = max(self.steps, step)
        for tracker in self.accelerator.trackers:
            tracker.log(numbers if tracker.name == "mlflow" else numbers | texts, step=step)


@dataclasses.dataclass
class StageLog:
    """One stage's rows: its step k is the run's step `first + k`."""

    run: RunLog
    label: str
    lr_groups: dict[str, int]
    first: int
    _named: bool = dataclasses.field(default=False, init=False)

    def step(self, stage_step: int, loss: float, lrs: list[float]) -> None:
        """Logs a finished optimiser step; `lrs` are the optimiser groups' rates it used."""
        numbers = {"train/loss": loss, "train/stage_step": stage_step}
        numbers.update({f"train/lr/{g}": lrs[i] for g, i in sorted(self.lr_groups.items())})
        texts = {}
        if not self._named:
            phase, _, stage = self.label.partition("/")
            texts = {"train/phase": phase, "train/stage": stage}
            self._named = True
        self.run.log(numbers, texts, self.first + stage_step)


_RUNS: weakref.WeakKeyDictionary[Accelerator, RunLog] = weakref.WeakKeyDictionary()


def run_log(accelerator: Accelerator) -> RunLog:
    """The run's log on `accelerator`: every stage trained on it shares one step axis."""
    if accelerator not in _RUNS:
        _RUNS[accelerator] = RunLog(accelerator)
    return _RUNS[accelerator]
