"""Phase checkpoints: a LLaVA-layout Hugging Face directory plus `compass_phase.json`.

Written atomically (a temporary sibling directory renamed into place), so a killed writer never
leaves something that looks like a finished checkpoint. Pickle weights are refused by default.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import AutoProcessor, LlavaForConditionalGeneration, LlavaProcessor

from compass_model.atomic import staged_directory
from compass_model.errors import CompassInputError

MANIFEST = "compass_phase.json"
_PICKLE_WEIGHTS = ("*.bin", "*.pt", "*.pth", "*.ckpt")


class CheckpointError(CompassInputError):
    """A checkpoint the user pointed at cannot be used; the message says what to do."""


@dataclass
class Checkpoint:
    model: LlavaForConditionalGeneration
    processor: LlavaProcessor
    manifest: dict[str, Any] | None


def save_checkpoint(
    model: LlavaForConditionalGeneration,
    processor: LlavaProcessor,
    out_dir: str | Path,
    manifest: dict[str, Any],
) -> Path:
    """Writes the whole directory beside `out_dir`, then renames it into place."""
    out_dir = Path(out_dir)
    with staged_directory(out_dir) as staging:
        model.save_pretrained(staging, safe_serialization=True)
        processor.save_pretrained(staging)
        write_manifest(staging, manifest)
    return out_dir


def write_manifest(directory: Path, manifest: dict[str, Any]) -> None:
    (directory / MANIFEST).write_text(
        json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )


def read_manifest(path: str | Path) -> dict[str, Any] | None:
    manifest = Path(path) / MANIFEST
    if not manifest.is_file():
        return None
    try:
        return json.loads(manifest.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise CheckpointError(
            f"{manifest}: not valid JSON ({error.msg}, line {error.lineno})"
        ) from None


def check_checkpoint_dir(path: str | Path, allow_pickle: bool = False) -> Path:
    """Fails early, with what to do, on anything `from_pretrained` would choke on or run code from."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(
            f"checkpoint {path} does not exist: pass a phase checkpoint directory "
            "(compass-train writes them), or leave `pretrained` out for the built-in tiny model"
        )
    if not path.is_dir():
        raise CheckpointError(f"checkpoint {path} is a file: pass the checkpoint's directory")
    if not (path / "config.json").is_file():
        raise CheckpointError(f"{path} has no config.json: not a Hugging Face model directory")
    if any(path.glob("*.safetensors")):
        return path
    pickles = sorted(p.name for pattern in _PICKLE_WEIGHTS for p in path.glob(pattern))
    if pickles and not allow_pickle:
        raise CheckpointError(
            f"{path} holds only pickle weights ({', '.join(pickles)}), which can run code when "
            "loaded: convert them to safetensors, or pass allow_pickle=True if you trust them"
        )
    if not pickles:
        raise CheckpointError(f"{path} has no weights (*.safetensors): was the save interrupted?")
    return path


def load_checkpoint(
    path: str | Path,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
    allow_pickle: bool = False,
) -> Checkpoint:
    path = check_checkpoint_dir(path, allow_pickle)
    model = LlavaForConditionalGeneration.from_pretrained(
        path, dtype=dtype, use_safetensors=not allow_pickle
    )
    processor = AutoProcessor.from_pretrained(path)
    return Checkpoint(model.to(device).eval(), processor, read_manifest(path))


def export_language_model(
    model: LlavaForConditionalGeneration, processor: LlavaProcessor, out_dir: str | Path
) -> Path:
    """The language half as a plain causal-LM directory, for text-only tools (lm-eval's `hf`)."""
    from transformers import AutoModelForCausalLM

    causal_lm = AutoModelForCausalLM.from_config(model.config.text_config)
    causal_lm.model.load_state_dict(model.model.language_model.state_dict())
    causal_lm.lm_head.load_state_dict(model.lm_head.state_dict())
    out_dir = Path(out_dir)
    causal_lm.save_pretrained(out_dir, safe_serialization=True)
    processor.tokenizer.save_pretrained(out_dir)
    return out_dir
