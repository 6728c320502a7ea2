"""The shipped GitHub Actions example: valid YAML, and the policy it writes is a valid policy."""

import textwrap
from pathlib import Path

import yaml

from compass_eval.analysis.config import from_mapping
from compass_eval.analysis.gate import GatePolicy

WORKFLOW = Path(__file__).parents[1] / "examples" / "github-actions" / "compass-gate.yml"


def test_workflow_evaluates_then_gates():
    workflow = yaml.safe_load(WORKFLOW.read_text())
    steps = workflow["jobs"]["gate"]["steps"]
    commands = [s.get("run", "") for s in steps]
    evaluate = next(i for i, c in enumerate(commands) if c.startswith("lm_eval --model compass"))
    gate = next(i for i, c in enumerate(commands) if c.startswith("compass-gate"))
    assert "--log_samples" in commands[evaluate]
    assert evaluate < gate


def test_policy_in_the_workflow_parses():
    steps = yaml.safe_load(WORKFLOW.read_text())["jobs"]["gate"]["steps"]
    script = next(s["run"] for s in steps if "POLICY" in s.get("run", ""))
    body = script.split("<<'POLICY'\n", 1)[1].split("POLICY", 1)[0]
    policy = from_mapping(GatePolicy, yaml.safe_load(textwrap.dedent(body)), "example policy")
    assert policy.require_significant is True
    assert policy.benchmarks["gsm8k"].max_drop == 0.03
