"""Phase checkpoints: a LLaVA-layout Hugging Face directory plus `compass_phase.json`.

Written atomically (a temporary sibling directory renamed into place), so a killed writer never
leaves something that looks like a finished checkpoint. Pickle weights are refused by default.
"""

from __future__ import annotations

import copy
import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from transformers import AutoProcessor, LlavaForConditionalGeneration, LlavaProcessor

from compass_model.atomic import staged_directory
from compass_model.errors import CompassInputError

MANIFEST = "compass_phase.json"
_PICKLE_WEIGHTS = ("*.bin", "*.pt", "*.pth", "*.ckpt")
_SHARD_INDEX = "model.safetensors.index.json"
_MAX_HEADER = 100 * 1024 * 1024  # the safetensors format's own limit


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
        nest_vision_model(staging)
        processor.save_pretrained(staging)
        # Also on its own (preprocessor_config.json), for loaders that read the image processor
        # only from there: transformers 4.x, which vLLM releases pin.
        processor.image_processor.save_pretrained(staging)
        write_manifest(staging, manifest)
    return out_dir


# transformers 5.24 writes the LLaVA vision tower as `vision_tower.<module>`; vLLM's SigLIP tower
# keeps the `vision_model.` level (vllm/model_executor/models/siglip.py, SiglipVisionModel.
# load_weights, vLLM main at commit 0c028ba4; llava.py at 35d3c24b maps `model.vision_tower.` to
# `vision_tower.` and hands the rest to that loader). transformers reads both spellings back.
_TOWER = ("vision_tower.", "model.vision_tower.")
_NESTED = "vision_model."


def vllm_weight_name(name: str) -> str:
    """A saved tensor name with the vision tower's `vision_model.` level that vLLM expects."""
    for tower in _TOWER:
        if name.startswith(tower) and not name.startswith(tower + _NESTED):
            return tower + _NESTED + name.removeprefix(tower)
    return name


def nest_vision_model(directory: Path) -> None:
    """Renames the vision tower's tensors in every safetensors file (and the shard index)."""
    for shard in sorted(directory.glob("*.safetensors")):
        tensors = load_file(shard)
        save_file({vllm_weight_name(k): v for k, v in tensors.items()}, shard, {"format": "pt"})
    index = directory / "model.safetensors.index.json"
    if index.is_file():
        content = json.loads(index.read_text(encoding="utf-8"))
        content["weight_map"] = {vllm_weight_name(k): v for k, v in content["weight_map"].items()}
        index.write_text(json.dumps(content, indent=2) + "\n", encoding="utf-8")


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
    _check_config(path / "config.json")
    shards = sorted(path.glob("*.safetensors"))
    if shards:
        _check_shard_index(path)
        for shard in shards:
            _check_safetensors(shard)
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


def _check_config(config: Path) -> None:
    if not config.is_file():
        raise CheckpointError(
            f"{config.parent} has no config.json: not a Hugging Face model directory"
        )
    try:
        content = json.loads(config.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(
            f"{config}: not valid JSON ({error}) — restore it from the checkpoint's source"
        ) from None
    if not isinstance(content, dict):
        raise CheckpointError(
            f"{config}: holds a {type(content).__name__}, not an object — restore it from the "
            "checkpoint's source"
        )
    if content.get("model_type", "llava") != "llava":
        raise CheckpointError(
            f"{config}: model_type is {content['model_type']!r}, not 'llava' — pass a Compass "
            "phase checkpoint"
        )


def _check_shard_index(path: Path) -> None:
    index = path / _SHARD_INDEX
    if not index.is_file():
        return
    try:
        shards = set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values())
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, AttributeError):
        raise CheckpointError(f"{index}: not a shard index — save the checkpoint again") from None
    missing = sorted(shard for shard in shards if not (path / str(shard)).is_file())
    if missing:
        raise CheckpointError(f"{index}: shard {missing[0]} is missing — copy the whole checkpoint")


def _check_safetensors(shard: Path) -> None:
    """A header that is cut short, of absurd length or not JSON, or tensors reaching past the
    end of the file: what a killed copy or a corrupted download leaves."""
    size = shard.stat().st_size
    fix = "the file is damaged or incomplete: copy or save the checkpoint again"
    with shard.open("rb") as handle:
        start = handle.read(8)
        if len(start) < 8:
            raise CheckpointError(f"{shard}: shorter than a safetensors header — {fix}")
        (length,) = struct.unpack("<Q", start)
        if length > min(_MAX_HEADER, size - 8):
            raise CheckpointError(f"{shard}: header length {length} is impossible — {fix}")
        try:
            header = json.loads(handle.read(length))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise CheckpointError(f"{shard}: header is not JSON — {fix}") from None
    try:
        end = max(
            (
                int(entry["data_offsets"][1])
                for name, entry in header.items()
                if name != "__metadata__"
            ),
            default=0,
        )
    except (AttributeError, KeyError, IndexError, TypeError, ValueError):
        raise CheckpointError(f"{shard}: header does not describe tensors — {fix}") from None
    if 8 + length + end > size:
        raise CheckpointError(f"{shard}: {size} bytes, its tensors need {8 + length + end} — {fix}")


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

    text_config = copy.deepcopy(model.config.text_config)
    # LlamaConfig's default EOS (2) is not the tokenizer's `</s>`: batched generation with the
    # exported model would run past the end of every answer.
    text_config.eos_token_id = processor.tokenizer.eos_token_id
    causal_lm = AutoModelForCausalLM.from_config(text_config)
    causal_lm.model.load_state_dict(model.model.language_model.state_dict())
    causal_lm.lm_head.load_state_dict(model.lm_head.state_dict())
    out_dir = Path(out_dir)
    causal_lm.save_pretrained(out_dir, safe_serialization=True)
    processor.tokenizer.save_pretrained(out_dir)
    return out_dir
