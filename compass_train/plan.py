"""`compass-train plan`: what a recipe would run, from shapes alone (the model on the meta device):
stages, what each trains, trainable parameters, data sizes. Nothing downloaded or allocated."""

from __future__ import annotations

from typing import Any

from compass_model.assemble import build_on_meta
from compass_model.config import preset
from compass_model.errors import CompassInputError
from compass_train.loop import total_steps
from compass_train.recipe import Recipe
from compass_train.records import fingerprint
from compass_train.select import count_trainable, select


def plan_rows(recipe: Recipe) -> list[dict[str, Any]]:
    model = build_on_meta(preset(recipe.model.preset))
    rows = []
    for phase in recipe.phases:
        for stage in phase.stages:
            selection = select(model, stage, f"phase {phase.name!r}, stage {stage.name!r}")
            records, missing = 0, None
            for entry in stage.data:
                try:
                    records += fingerprint(recipe.data_path(entry))["records"]
                except CompassInputError:
                    records, missing = None, recipe.data_path(entry)
                    break
            rows.append(
                {
                    "phase": phase.name,
                    "parent": phase.parent,
                    "stage": stage.name,
                    "train": stage.train,
                    "lora": None
                    if stage.lora is None
                    else f"r={stage.lora.r} alpha={stage.lora.alpha} on {','.join(stage.lora.modules)}"
                    + ("" if stage.lora.quantization == "none" else " 4-bit NF4"),
                    "trainable": count_trainable(
                        model, selection, stage.lora.r if stage.lora else 0
                    ),
                    "records": records,
                    "missing": None if missing is None else str(missing.resolve()),
                    # on one process; N processes take N times fewer steps per epoch
                    "steps": stage.max_steps
                    if records is None
                    else total_steps(stage, records, world=1),
                    "lr": stage.lr,
                    "lr_groups": stage.lr_groups,
                    "batch_size": stage.batch_size,
                    "epochs": stage.epochs,
                }
            )
    return rows


def render_plan(recipe: Recipe, rows: list[dict[str, Any]]) -> str:
    model = build_on_meta(preset(recipe.model.preset))
    total = sum(p.numel() for p in model.parameters())
    lines = [
        f"recipe {recipe.name}: preset {recipe.model.preset} ({total:,} parameters), "
        f"seed {recipe.seed}, phases {' -> '.join(['p0'] + [p.name for p in recipe.phases])}"
    ]
    for row in rows:
        counts = row["trainable"]
        parts = ", ".join(f"{k} {v:,}" for k, v in counts.items() if k != "total")
        records = (
            f"data missing: {row['missing']}"
            if row["records"] is None
            else f"{row['records']:,} records"
        )
        steps = (
            "steps unknown until the data exists"
            if row["steps"] is None
            else (f"{row['steps']:,} steps")
        )
        lrs = ", ".join(f"{k} {v:g}" for k, v in row["lr_groups"].items()) or f"{row['lr']:g}"
        lines.append(
            f"{row['phase']}/{row['stage']} (from {row['parent']}): trainable {counts['total']:,} "
            f"({parts}); full: {', '.join(row['train']) or '-'}; lora: {row['lora'] or '-'}; "
            f"lr {lrs}; batch {row['batch_size']}; {steps} (epochs {row['epochs']:g}); {records}"
        )
    return "\n".join(lines)
