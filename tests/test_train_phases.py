"""The phase chain for real: the demo recipe end to end (p0-p3 loadable by transformers and by
`lm_eval --model compass`, manifests chained, adapters as the recipe says, QLoRA on CPU), and
freezing checked tensor by tensor."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from PIL import Image
from safetensors.torch import load_file

from compass_train.cli import main
from compass_train.plan import plan_rows
from compass_train.recipe import load_recipe

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "recipes" / "demo.yaml"
CHAIN = REPO / "tests" / "fixtures" / "train" / "chain.yaml"
PHASES = ["p0", "p1", "p2", "p3"]

pytestmark = pytest.mark.slow


def _manifest(path: Path) -> dict:
    return json.loads((path / "compass_phase.json").read_text(encoding="utf-8"))


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return load_file(path / "model.safetensors")


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    assert main(["run", str(DEMO), "--out", str(out), "--set", "stages.max_steps=2"]) == 0
    return out


def test_demo_writes_four_checkpoints_that_transformers_loads(demo: Path) -> None:
    from transformers import AutoModelForImageTextToText, AutoProcessor

    assert sorted(p.name for p in demo.iterdir() if not p.name.startswith(".")) == PHASES
    for phase in PHASES:
        model = AutoModelForImageTextToText.from_pretrained(demo / phase)
        processor = AutoProcessor.from_pretrained(demo / phase)
        inputs = processor(
            images=[Image.new("RGB", (40, 40), "red")],
            text=[
                processor.apply_chat_template(
                    [
                        {
                            "role": "user",
                            "content": [{"type": "image"}, {"type": "text", "text": "何?"}],
                        }
                    ],
                    add_generation_prompt=True,
                )
            ],
            return_tensors="pt",
        )
        assert model(**inputs).logits.isfinite().all()


def test_demo_checkpoints_evaluate_with_lm_eval_compass(demo: Path) -> None:
    import lm_eval
    from lm_eval.tasks import TaskManager

    tasks = TaskManager()  # indexed once: it is the slow part
    for phase in PHASES:
        results = lm_eval.simple_evaluate(
            model="compass",
            model_args=f"pretrained={demo / phase}",
            tasks=["compass_smoke"],
            limit=2,
            task_manager=tasks,
        )
        assert results["config"]["compass_manifest"]["phase"] == phase
        assert results["results"]


def test_manifests_chain_back_to_p0_with_provenance(demo: Path) -> None:
    manifests = {phase: _manifest(demo / phase) for phase in PHASES}
    assert manifests["p0"]["parent"] is None
    for child, parent in [("p3", "p2"), ("p2", "p1"), ("p1", "p0")]:
        assert manifests[child]["parent"] == parent
        assert manifests[child]["parent_run_id"] == manifests[parent]["run_id"]
    recipe = load_recipe(DEMO, ["stages.max_steps=2"])
    planned = {(r["phase"], r["stage"]): r["trainable"] for r in plan_rows(recipe)}
    for phase in PHASES[1:]:
        manifest = manifests[phase]
        assert set(manifest["libraries"]) >= {"torch", "transformers", "peft", "accelerate"}
        assert manifest["git_revision"]
        for stage in manifest["stages"]:
            assert stage["recipe"]["max_steps"] == 2 and stage["steps"] == 2
            assert len(stage["losses"]) == 2 and stage["final_loss"] > 0
            assert all(len(d["sha256"]) == 64 and d["records"] > 0 for d in stage["data"])
            counts = stage["trainable_parameters"]
            assert counts == planned[(phase, stage["name"])]
            assert counts["total"] == stage["trainable_parameters_in_model"]
            assert (demo / phase / f"loss_{stage['name']}.png").read_bytes()[:4] == b"\x89PNG"


def test_saved_adapters_have_the_recipes_ranks_and_qlora_ran_in_4_bit(demo: Path) -> None:
    recipe = load_recipe(DEMO)
    for phase in recipe.phases:
        manifest = _manifest(demo / phase.name)
        for stage, record in zip(phase.stages, manifest["stages"], strict=True):
            adapter = demo / phase.name / "adapters" / stage.name / "adapter_config.json"
            if stage.lora is None:
                assert not adapter.exists() and record["adapter"] is None
                continue
            config = json.loads(adapter.read_text(encoding="utf-8"))
            assert (config["r"], config["lora_alpha"]) == (stage.lora.r, stage.lora.alpha)
            assert (record["adapter"]["r"], record["adapter"]["alpha"]) == (
                stage.lora.r,
                stage.lora.alpha,
            )
    p2 = _manifest(demo / "p2")["stages"][0]["adapter"]
    # bitsandbytes runs NF4 on CPU here, so `prefer` really trains on a 4-bit base.
    assert p2["type"] == "qlora" and p2["quantization"].startswith("nf4") and p2["fallback"] is None


def test_a_finished_phase_is_not_retrained(demo: Path, capsys) -> None:
    before = {p: _manifest(demo / p)["run_id"] for p in PHASES}
    assert main(["run", str(DEMO), "--out", str(demo), "--set", "stages.max_steps=2"]) == 0
    assert {p: _manifest(demo / p)["run_id"] for p in PHASES} == before
    assert capsys.readouterr().out.count("finished checkpoint kept") == 4
    # Asked explicitly, one phase is retrained; the others stay as they were.
    again = ["--only", "p3", "--force", "--set", "stages.max_steps=2"]
    assert main(["run", str(DEMO), "--out", str(demo), *again]) == 0
    after = {p: _manifest(demo / p)["run_id"] for p in PHASES}
    assert after["p3"] != before["p3"] and {**after, "p3": before["p3"]} == before


@pytest.fixture(scope="module")
def chain(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("chain")
    assert main(["run", str(CHAIN), "--out", str(out)]) == 0
    return out


def _changed(before: dict, after: dict) -> set[str]:
    assert before.keys() == after.keys()
    return {k for k in before if not torch.equal(before[k], after[k])}


def test_projector_alignment_changes_the_projector_and_nothing_else(chain: Path) -> None:
    changed = _changed(_weights(chain / "p0"), _weights(chain / "p1"))
    projector = {k for k in _weights(chain / "p0") if "multi_modal_projector" in k}
    assert changed == projector


def test_text_only_lora_stage_leaves_vision_and_projector_bit_identical(chain: Path) -> None:
    changed = _changed(_weights(chain / "p1"), _weights(chain / "p3"))
    assert changed and all("language_model" in k for k in changed)
    # Merged LoRA touched exactly the wrapped Linear layers (all of them, at lr 1e-2).
    assert all(k.endswith("proj.weight") for k in changed)
    config = yaml.safe_load(CHAIN.read_text(encoding="utf-8"))
    lora = config["phases"][1]["stages"][0]["lora"]
    adapter = json.loads((chain / "p3" / "adapters" / "s1" / "adapter_config.json").read_text())
    assert (adapter["r"], adapter["lora_alpha"], adapter["lora_dropout"]) == (
        lora["r"],
        lora["alpha"],
        lora["dropout"],
    )


def test_qlora_adapter_is_merged_onto_the_full_precision_parent(demo: Path) -> None:
    """P2's weights are P1's plus (alpha / r) * B @ A of the saved adapter, layer by layer."""
    parent, child = _weights(demo / "p1"), _weights(demo / "p2")
    adapter_dir = demo / "p2" / "adapters" / "s1"
    adapter = load_file(adapter_dir / "adapter_model.safetensors")
    config = json.loads((adapter_dir / "adapter_config.json").read_text(encoding="utf-8"))
    scale = config["lora_alpha"] / config["r"]
    checked = 0
    for name in adapter:
        if ".lora_A." not in name:
            continue
        module = name.removeprefix("base_model.model.").split(".lora_A.")[0]
        # Saved LLaVA checkpoints name the language model's layers `language_model.model.*`.
        key = "language_model.model." + module.split("language_model.", 1)[1] + ".weight"
        b = adapter[name.replace("lora_A", "lora_B")]
        expected = parent[key] + scale * b @ adapter[name]
        assert torch.allclose(child[key], expected, atol=1e-6), key
        checked += 1
    assert checked == len(config["target_modules"]) > 0


def test_bf16_weights_with_bf16_autocast_train_and_save_in_bf16(tmp_path: Path) -> None:
    """The paper's precision settings (bf16 weights, bf16 autocast, float32 masters for trained
    tensors), on the tiny chain."""
    settings = ["--set", "model.dtype=bfloat16", "--set", "mixed_precision=bf16"]
    # A process of its own: accelerate fixes the precision of a process at its first Accelerator.
    command = [sys.executable, "-m", "compass_train", "run", str(CHAIN), "--out", str(tmp_path)]
    subprocess.run([*command, *settings], check=True, capture_output=True, timeout=300)
    p1, p3 = _weights(tmp_path / "p1"), _weights(tmp_path / "p3")
    assert {t.dtype for t in p3.values()} == {torch.bfloat16}
    changed = _changed(p1, p3)
    assert changed and all("language_model" in k for k in changed)
    assert _manifest(tmp_path / "p3")["mixed_precision"] == "bf16"


def test_a_phase_whose_stages_changed_is_retrained(demo: Path, tmp_path, capsys) -> None:
    before = {p: _manifest(demo / p)["run_id"] for p in PHASES}
    recipe = yaml.safe_load(DEMO.read_text(encoding="utf-8"))
    p3 = next(phase for phase in recipe["phases"] if phase["name"] == "p3")
    p3["stages"][0]["lr"] = p3["stages"][0]["lr"] / 2
    changed = tmp_path / "demo.yaml"
    changed.write_text(yaml.safe_dump(recipe, allow_unicode=True), encoding="utf-8")
    assert main(["run", str(changed), "--out", str(demo), "--set", "stages.max_steps=2"]) == 0
    after = {p: _manifest(demo / p)["run_id"] for p in PHASES}
    assert after["p3"] != before["p3"] and {**after, "p3": before["p3"]} == before
    assert "p3: its stages or data changed since; retraining" in capsys.readouterr().out
