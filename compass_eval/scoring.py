"""Batched scoring and generation on token ids: the model-facing half of the `compass` LM.

Log-probabilities are computed only at continuation positions (the language-model head runs on
those hidden states alone), so long contexts never materialise a sequence × vocabulary tensor.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from tqdm import tqdm

from compass_model.errors import CompassInputError


@dataclass
class ScoreRow:
    """Context ids (images already expanded to their tokens), continuation ids, and the images
    in the order of their token blocks."""

    context: list[int]
    continuation: list[int]
    images: list = field(default_factory=list)


def _image_blocks(ids: list[int], image_token_id: int, block: int) -> list[int]:
    """Start positions of each image's run of `block` image tokens."""
    starts, run = [], 0
    for position, token in enumerate(ids):
        if token == image_token_id:
            if run % block == 0:
                starts.append(position)
            run += 1
        else:
            run = 0
    return starts


def fit_to_length(
    row: ScoreRow, limit: int, side: str, image_token_id: int, block: int
) -> ScoreRow:
    """Cuts the context (never the continuation) so context + continuation ≤ `limit` tokens.

    An image (a run of `block` image tokens) is kept whole or dropped whole, never split.
    """
    excess = len(row.context) + len(row.continuation) - limit
    if excess <= 0:
        return row
    if len(row.continuation) >= limit:
        raise CompassInputError(
            f"a continuation of {len(row.continuation)} tokens does not fit max_length={limit - 1}:"
            " raise max_length"
        )
    starts = _image_blocks(row.context, image_token_id, block) if row.images else []
    if side == "left":
        cut = excess
        for start in starts:
            if start < cut < start + block:
                cut = start + block
        kept = [image for image, start in zip(row.images, starts, strict=True) if start >= cut]
        return ScoreRow(row.context[cut:], row.continuation, kept)
    end = len(row.context) - excess
    for start in reversed(starts):
        if start < end < start + block:
            end = start
    kept = [image for image, start in zip(row.images, starts, strict=True) if start + block <= end]
    return ScoreRow(row.context[:end], row.continuation, kept)


class Scorer:
    """Runs a LLaVA-layout model on rows of ids: log-likelihoods of continuations, and greedy or
    sampled generation."""

    def __init__(self, model, processor, device: torch.device, pad_id: int) -> None:
        self.model = model
        self.processor = processor
        self.device = device
        self.pad_id = pad_id

    def _pixels(self, images: list) -> torch.Tensor | None:
        if not images:
            return None
        pixels = self.processor.image_processor(images, return_tensors="pt")["pixel_values"]
        return pixels.to(self.device, self.model.dtype)

    @torch.inference_mode()
    def loglikelihoods(
        self, rows: list[ScoreRow], batch_size: int, progress: bool = False, desc: str = ""
    ) -> list[tuple[float, bool]]:
        """(sum of log-probabilities of the continuation, whether it is the greedy choice)."""
        results: list[tuple[float, bool] | None] = [None] * len(rows)
        # Longest first: the first batch shows the worst-case memory at once.
        order = sorted(range(len(rows)), key=lambda i: -len(rows[i].context + rows[i].continuation))
        bar = tqdm(total=len(rows), disable=not progress, desc=desc)
        for first in range(0, len(order), batch_size):
            batch = [rows[i] for i in order[first : first + batch_size]]
            for i, result in zip(
                order[first : first + batch_size], self._score_batch(batch), strict=True
            ):
                results[i] = result
            bar.update(len(batch))
        bar.close()
        return results  # type: ignore[return-value]

    def _score_batch(self, batch: list[ScoreRow]) -> list[tuple[float, bool]]:
        inputs = [(row.context + row.continuation)[:-1] for row in batch]
        width = max(map(len, inputs))
        input_ids = torch.full((len(batch), width), self.pad_id, dtype=torch.long)
        attention = torch.zeros((len(batch), width), dtype=torch.long)
        for i, ids in enumerate(inputs):
            input_ids[i, : len(ids)] = torch.tensor(ids)
            attention[i, : len(ids)] = 1
        hidden = self.model.model(
            input_ids=input_ids.to(self.device),
            attention_mask=attention.to(self.device),
            pixel_values=self._pixels([image for row in batch for image in row.images]),
        ).last_hidden_state
        results = []
        for i, (ids, row) in enumerate(zip(inputs, batch, strict=True)):
            n = len(row.continuation)
            logits = self.model.lm_head(hidden[i, len(ids) - n : len(ids)]).float()
            logprobs = torch.log_softmax(logits, dim=-1)
            target = torch.tensor(row.continuation, device=logprobs.device)
            total = logprobs.gather(1, target[:, None]).sum().item()
            greedy = bool((logprobs.argmax(dim=-1) == target).all())
            results.append((total, greedy))
        return results

    @torch.inference_mode()
    def generate(
        self,
        row: ScoreRow,
        max_new_tokens: int,
        stopping,
        sampling: dict[str, Any],
        eos_token_id: int,
    ) -> list[int]:
        input_ids = torch.tensor([row.context], device=self.device)
        output = self.model.generate(
            input_ids=input_ids,
            attention_mask=torch.ones_like(input_ids),
            pixel_values=self._pixels(row.images),
            max_new_tokens=max_new_tokens,
            stopping_criteria=stopping,
            pad_token_id=self.pad_id,
            eos_token_id=eos_token_id,
            **sampling,
        )
        return output[0, input_ids.shape[1] :].tolist()
