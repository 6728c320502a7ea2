#!/usr/bin/env bash
# The GPU check of issue 13 (Build 6), for one NVIDIA GPU, in under 8 minutes:
#   1. a mid-sized random LLaVA model (323M parameters) evaluated by `compass` and lm-eval's `hf`
#      at batch 1 / 8 / 32 on a multiple-choice task (cma_basics-1.0-0.1, real data) and a
#      generation task (gsm8k_cot_xml, 32 problems): wall time of each whole lm_eval command
#      (model loading included, the same for both) and the ratio hf/compass;
#   2. two steps of every demo stage in bf16 on CUDA, P2 as QLoRA (4-bit NF4 on the GPU);
#   3. where vLLM imports, the mid-sized checkpoint served by lm-eval's vLLM backend against
#      `compass`: greedy gsm8k_cot_xml generations compared one by one.
#
#   COMPASS_DATA_DIR=../shared/data bash benchmarks/gpu_check.sh [OUT]
#
# Prints one line per figure; the lm_eval logs stay under OUT (default out/gpu_check).
set -euo pipefail

PYTHON=${PYTHON:-python}
OUT=${1:-out/gpu_check}
export COMPASS_DATA_DIR=${COMPASS_DATA_DIR:-../shared/data}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
"$PYTHON" -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print('torch', torch.__version__)"

echo "== 1. compass against hf on one GPU"
"$PYTHON" - "$OUT" <<'EOF'
import dataclasses
import sys
from pathlib import Path

from compass_model.assemble import build_random
from compass_model.checkpoint import export_language_model, save_checkpoint
from compass_model.config import TINY

out = Path(sys.argv[1])
mid = dataclasses.replace(
    TINY,
    name="gpu-check",
    vision={**TINY.vision, "hidden_size": 384, "intermediate_size": 1536,
            "num_hidden_layers": 6, "num_attention_heads": 6, "image_size": 224,
            "patch_size": 16},
    text={**TINY.text, "hidden_size": 1024, "intermediate_size": 2816, "num_hidden_layers": 24,
          "num_attention_heads": 16, "num_key_value_heads": 16},
)  # fmt: skip
model, processor = build_random(mid)
print(f"model: {sum(p.numel() for p in model.parameters()):,} parameters")
save_checkpoint(model, processor, out / "mid", {"phase": "gpu-check"})
export_language_model(model, processor, out / "mid_lm")
EOF

"$PYTHON" - "$OUT" <<'EOF'
import json
import subprocess
import sys
import time
from pathlib import Path

out = Path(sys.argv[1])
TASKS = {
    "cma_basics-1.0-0.1": [],
    "gsm8k_cot_xml": ["--limit", "32", "--gen_kwargs", "max_gen_toks=256"],
}
MODELS = {
    "compass": ("compass", f"pretrained={out / 'mid'},dtype=bfloat16,device=cuda"),
    "hf": ("hf", f"pretrained={out / 'mid_lm'},dtype=bfloat16,device=cuda"),
}


def evaluate(side: str, task: str, batch: int) -> tuple[float, list]:
    model, args = MODELS[side]
    target = out / "eval" / f"{side}_{task}_{batch}"
    command = ["lm_eval", "--model", model, "--model_args", args, "--tasks", task,
               "--batch_size", str(batch), "--log_samples", "--output_path", str(target),
               *TASKS[task]]  # fmt: skip
    started = time.perf_counter()
    with open(f"{target}.log", "w") as log:
        subprocess.run(command, check=True, stdout=log, stderr=subprocess.STDOUT)
    wall = time.perf_counter() - started
    samples = sorted(
        (json.loads(line) for path in target.rglob("samples_*.jsonl") for line in path.open()),
        key=lambda s: s["doc_id"],
    )
    return wall, [prediction(s["filtered_resps"]) for s in samples]


def prediction(responses: list):
    """The chosen answer: the generated text, or the index of the likeliest choice."""
    if isinstance(responses[0], str):
        return responses[0]
    return max(range(len(responses)), key=lambda i: float(responses[i][0]))


for task in TASKS:
    first = None
    for batch in (1, 8, 32):
        (compass, ours), (hf, theirs) = evaluate("compass", task, batch), evaluate("hf", task, batch)
        first = first or compass
        same = sum(a == b for a, b in zip(ours, theirs, strict=True))
        print(f"{task} batch {batch}: compass {compass:.1f}s, hf {hf:.1f}s, hf/compass "
              f"{hf / compass:.2f}x, compass batch 1/batch {batch} {first / compass:.2f}x; "
              f"{same}/{len(ours)} chosen answers identical", flush=True)  # fmt: skip
EOF

echo "== 2. two steps of every demo stage, bf16 on CUDA, P2 as QLoRA"
"$PYTHON" -m compass_train run recipes/demo.yaml --out "$OUT/train" --force \
  --set stages.max_steps=2 --set mixed_precision=bf16 > "$OUT/train.log" 2>&1
"$PYTHON" - "$OUT" <<'EOF'
import json
import sys
from pathlib import Path

out = Path(sys.argv[1]) / "train"
for phase in ("p1", "p2", "p3"):
    for stage in json.loads((out / phase / "compass_phase.json").read_text())["stages"]:
        adapter = (stage["adapter"] or {}).get("type")
        print(f"{phase}/{stage['name']}: {stage['steps']} steps, loss {stage['final_loss']:.4f}, "
              f"adapter {adapter}, {stage['wall_time_s']:.1f}s")  # fmt: skip
stage = json.loads((out / "p2" / "compass_phase.json").read_text())["stages"][0]
assert stage["adapter"]["type"] == "qlora", stage["adapter"]
EOF

echo "== 3. vLLM serves a Compass checkpoint"
if ! "$PYTHON" -c "import vllm" > /dev/null 2>&1; then
  echo "vLLM does not import here: skipped (pip install vllm, then rerun)"
  exit 0
fi
"$PYTHON" - "$OUT" <<'EOF'
import json
import subprocess
import sys
from pathlib import Path

out = Path(sys.argv[1])
common = ["--tasks", "gsm8k_cot_xml", "--limit", "16", "--gen_kwargs", "max_gen_toks=64",
          "--log_samples"]  # fmt: skip
runs = {
    "vllm": ["--model", "vllm", "--model_args",
             f"pretrained={out / 'mid'},dtype=float32,max_model_len=4096,gpu_memory_utilization=0.5"],
    "compass": ["--model", "compass", "--model_args", f"pretrained={out / 'mid'},dtype=float32,device=cuda",
                "--batch_size", "8"],
}  # fmt: skip
answers = {}
for side, args in runs.items():
    target = out / "vllm_check" / side
    with open(f"{target}.log", "w") as log:
        subprocess.run(["lm_eval", *args, *common, "--output_path", str(target)], check=True,
                       stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    samples = [json.loads(line) for p in target.rglob("samples_*.jsonl") for line in p.open()]
    answers[side] = [s["resps"] for s in sorted(samples, key=lambda s: s["doc_id"])]
same = sum(a == b for a, b in zip(answers["vllm"], answers["compass"], strict=True))
print(f"vLLM loaded the checkpoint; greedy generations identical to compass: {same}/16")
EOF
