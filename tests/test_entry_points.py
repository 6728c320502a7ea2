"""What the installed distribution declares: its console scripts and the `lm_eval.models` entry
point that lm-eval 0.5 reads (`lm_eval.api.registry.load_plugins`) instead of the .pth hook."""

from __future__ import annotations

import importlib.metadata as md
import json

from clitools import run_python

DISTRIBUTION = "compass-eval"
SCRIPTS = {"compass-data", "compass-eval", "compass-gate", "compass-report", "compass-train"}


def _entry_points(group: str) -> dict[str, md.EntryPoint]:
    return {ep.name: ep for ep in md.distribution(DISTRIBUTION).entry_points if ep.group == group}


def test_every_console_script_loads_a_callable():
    scripts = _entry_points("console_scripts")
    assert set(scripts) == SCRIPTS
    for name, entry_point in scripts.items():
        assert callable(entry_point.load()), name


# Run as lm-eval 0.5 does, in a process where the .pth hook is off: the built-in models first,
# then every entry point of the group registered as a lazy placeholder, then the name resolved and
# one real evaluation through the resolved class.
_AS_LM_EVAL_05 = """
import importlib.metadata as md, json
import lm_eval.models
from lm_eval import simple_evaluate
from lm_eval.api.model import LM
from lm_eval.api.registry import get_model, model_registry
from lm_eval.tasks import TaskManager
from compass_eval.paths import tasks_dir

hooked = "compass" in model_registry
for entry_point in md.entry_points(group="lm_eval.models"):
    model_registry.register(entry_point.name, target=entry_point)
model = get_model("compass")
results = simple_evaluate(
    model="compass", tasks=["compass_smoke_text"], limit=2,
    task_manager=TaskManager(include_path=str(tasks_dir())),
)
print(json.dumps({
    "hooked": hooked, "class": f"{model.__module__}:{model.__qualname__}",
    "is_lm": issubclass(model, LM), "hf_still_there": "hf" in model_registry,
    "acc": results["results"]["compass_smoke_text"]["acc,none"],
}))
"""


def test_lm_eval_models_entry_point_resolves_compass_without_the_hook(tmp_path):
    (entry_point,) = _entry_points("lm_eval.models").values()
    assert entry_point.name == "compass"
    run = run_python(["-c", _AS_LM_EVAL_05], tmp_path, COMPASS_LM_EVAL_HOOK="0")
    assert run.returncode == 0, run.stderr[-2000:]
    found = json.loads(run.stdout.strip().splitlines()[-1])
    assert found["hooked"] is False  # the hook is off: only the entry point can supply the name
    assert found["class"] == entry_point.value == "compass_eval.lm:CompassLM"
    assert found["is_lm"] and found["hf_still_there"]
    assert 0.0 <= found["acc"] <= 1.0
