"""The in-process teacher: a Compass (LLaVA-layout) or transformers checkpoint answering with greedy
`generate` in this process. It also backs the loopback server (`server.py`)."""

from __future__ import annotations

import io
import threading
from pathlib import Path

import torch
from PIL import Image
from transformers import LlavaForConditionalGeneration, LlavaProcessor

from compass_model.typed import input_error
from compass_train.synth.teacher import TeacherRequest


class InProcessTeacher:
    def __init__(
        self, model: LlavaForConditionalGeneration, processor: LlavaProcessor, name: str
    ) -> None:
        self.model = name
        self._network = model.eval()
        self._processor = processor
        # generate() is not safe to run concurrently on one module; requests queue here.
        self._lock = threading.Lock()

    @classmethod
    def from_spec(cls, spec: str) -> InProcessTeacher:
        """`tiny` or `tiny:SEED` for the seeded random model, else a checkpoint directory."""
        if spec == "tiny" or spec.startswith("tiny:"):
            from compass_model.assemble import build_tiny

            seed_text = spec.split(":", 1)[1] if ":" in spec else None
            if seed_text is not None and not seed_text.isdecimal():
                raise input_error(
                    "--teacher", spec, "SEED is not a whole number ≥ 0", "write e.g. tiny:0"
                )
            seed = None if seed_text is None else int(seed_text)
            model, processor = build_tiny(seed)
            return cls(model, processor, spec)
        from compass_model.checkpoint import load_checkpoint

        checkpoint = load_checkpoint(spec)
        return cls(checkpoint.model, checkpoint.processor, Path(spec).name)

    def complete(self, request: TeacherRequest) -> str:
        text = self._processor.apply_chat_template(
            request.messages, tokenize=False, add_generation_prompt=True
        )
        images = [Image.open(io.BytesIO(image)).convert("RGB") for image in request.images]
        inputs = self._processor(
            images=images or None, text=text, return_tensors="pt", add_special_tokens=False
        )
        sampling = (
            {"do_sample": True, "temperature": request.temperature}
            if request.temperature > 0
            else {"do_sample": False}
        )
        with self._lock, torch.no_grad():
            output = self._network.generate(
                **inputs,
                max_new_tokens=request.max_tokens,
                pad_token_id=self._processor.tokenizer.pad_token_id,
                **sampling,
            )
        new_tokens = output[0, inputs["input_ids"].shape[1] :]
        return self._processor.tokenizer.decode(new_tokens, skip_special_tokens=True)
