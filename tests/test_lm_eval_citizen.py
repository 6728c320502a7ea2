"""Installing Compass changes nothing of lm-eval for anyone else: lm-eval's own tasks and tags are
indexed as without Compass, a broken Compass install never breaks `import lm_eval`, and the
one-line error path is scoped to the `lm_eval` command. Each side runs in a fresh interpreter of
this venv, where the `.pth` hook is active unless `COMPASS_LM_EVAL_HOOK=0`."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from clitools import REPO, cli_env

from compass_eval.lm_eval_hook import DISABLE_VARIABLE

# Every index entry as (kind, YAML path, tag members), keyed by name.
INDEX_PROBE = """
import json
from lm_eval.tasks import TaskManager
index = TaskManager().task_index
print(json.dumps({
    name: [entry.kind.name, str(entry.yaml_path), sorted(entry.tags)]
    for name, entry in index.items()
}))
"""


def _python(code: str, tmp_path, *args: str, **env: str) -> subprocess.CompletedProcess:
    """`python -c code` (or `python -m module` where code is "-m module"), as a user would run it."""
    environment = cli_env(**env)
    environment.pop("COMPASS_DATA_DIR")  # a user who never set up Compass's data
    option = ["-m", code.split()[1]] if code.startswith("-m ") else ["-c", code]
    return subprocess.run(
        [sys.executable, *option, *args],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _index(tmp_path, **env: str) -> dict[str, list]:
    run = _python(INDEX_PROBE, tmp_path, **env)
    assert run.returncode == 0, run.stderr[-2000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def indexes(tmp_path_factory) -> tuple[dict, dict]:
    where = tmp_path_factory.mktemp("index")
    return _index(where), _index(where, **{DISABLE_VARIABLE: "0"})


def test_lm_evals_gsm8k_and_math_word_problems_are_its_own(indexes):
    hooked, _ = indexes
    kind, path, _ = hooked["gsm8k"]
    assert kind == "TASK" and path.endswith(os.path.join("lm_eval", "tasks", "gsm8k", "gsm8k.yaml"))
    kind, _, members = hooked["math_word_problems"]
    assert kind == "TAG" and len(members) == 26 and "gsm8k" in members


def test_the_hook_only_adds_names_to_lm_evals_task_index(indexes):
    hooked, plain = indexes
    assert "compass_gsm8k" not in plain and "compass_suite" in hooked  # the switch works
    assert {name: hooked.get(name) for name in plain} == plain
    tasks = str(REPO / "tasks")
    added = {name: entry for name, entry in hooked.items() if name not in plain}
    assert all(path.startswith(tasks) for _, path, _ in added.values() if path != "None")


CHECK_LM_EVAL = """
import lm_eval
from lm_eval.api.registry import get_model
from lm_eval.tasks import TaskManager
from lm_eval._cli.harness import HarnessCLI
print(get_model("hf").__name__, TaskManager().task_index["gsm8k"].yaml_path.parent.name)
"""


@pytest.mark.parametrize(
    "unimportable",
    [
        ["compass_eval.paths"],  # the task folder cannot be found
        ["compass_eval.lm"],  # the model module is missing
        ["compass_model.errors"],  # the CLI error path cannot be set up
        ["compass_eval.paths", "compass_eval.lm", "compass_model.errors"],
    ],
    ids=["paths", "model", "errors", "all-three"],
)
def test_a_broken_compass_install_warns_once_and_leaves_lm_eval_working(unimportable, tmp_path):
    # `sys.modules[name] = None` makes any later import of that module raise ImportError.
    breaking = "".join(f"sys.modules[{name!r}] = None\n" for name in unimportable)
    run = _python(f"import sys\n{breaking}{CHECK_LM_EVAL}", tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split() == ["HFLM", "gsm8k"]
    warnings = [line for line in run.stderr.splitlines() if line.startswith("compass:")]
    assert len(warnings) == 1, run.stderr[-2000:]
    assert "not hooked into lm-eval" in warnings[0] and "Traceback" not in run.stderr


def test_importing_the_model_leaves_the_excepthook_alone(tmp_path):
    run = _python(
        "import sys; before = sys.excepthook; import compass_eval.lm; "
        "print(sys.excepthook is before)",
        tmp_path,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split()[-1] == "True"


def test_a_program_importing_the_model_sees_its_own_errors_as_tracebacks(tmp_path):
    run = _python(
        "import compass_eval.lm\n"
        "from compass_model.errors import CompassInputError\n"
        "raise CompassInputError('bad field')\n",
        tmp_path,
    )
    assert run.returncode == 1 and "Traceback" in run.stderr and "bad field" in run.stderr


def test_python_m_lm_eval_shows_an_input_error_as_one_line(tmp_path):
    arguments = [
        "--model",
        "compass",
        "--model_args",
        "colour=red",
        "--tasks",
        "compass_smoke_text",
    ]
    run = _python("-m lm_eval", tmp_path, *arguments, "--limit", "1")
    assert run.returncode == 2, run.stderr[-2000:]
    assert "Traceback" not in run.stderr
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("error: --model_args: unknown key 'colour'"), last
