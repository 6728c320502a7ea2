"""Batched scoring and generation on token ids: the model-facing half of the `compass` LM.

Requests that share a context (the choices of one multiple-choice question, the two answers of an
EDINET question) are scored from one pass over that context: its keys/values are computed once and
every continuation of the group runs on top of them. Log-probabilities are computed only at
continuation positions, so long contexts never materialise a sequence × vocabulary tensor.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
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


@dataclass
class _Pass:
    """One forward row: input ids with their images, and the (row index, continuation) pairs
    scored at its end."""

    input_ids: list[int]
    images: list
    targets: list[tuple[int, list[int]]]


def _image_key(image) -> str:
    """Equal pictures give equal keys, whichever object lm-eval handed over."""
    digest = hashlib.sha1(image.tobytes(), usedforsecurity=False).hexdigest()
    return f"{image.mode}{image.size}{digest}"


class Scorer:
    """Runs a LLaVA-layout model on rows of ids: log-likelihoods of continuations, and greedy or
    sampled generation. `share_context=False` scores every row on its own (the reference path)."""

    def __init__(
        self, model, processor, device: torch.device, pad_id: int, share_context: bool = True
    ) -> None:
        self.model = model
        self.share_context = share_context
        self.processor = processor
        self.device = device
        self.pad_id = pad_id
        self.image_token_id = model.config.image_token_id

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
        bar = tqdm(total=len(rows), disable=not progress, desc=desc)
        passes, shared = self._plan(rows)
        for members in shared:
            group = [rows[i] for i in members]
            for i, result in zip(members, self._score_shared(group), strict=True):
                results[i] = result
            bar.update(len(members))
        # Longest first: the first batch shows the worst-case memory at once.
        passes.sort(key=lambda p: -len(p.input_ids))
        for first in range(0, len(passes), batch_size):
            batch = passes[first : first + batch_size]
            for i, result in self._score_passes(batch):
                results[i] = result
            bar.update(sum(len(p.targets) for p in batch))
        bar.close()
        return results  # type: ignore[return-value]

    def _plan(self, rows: list[ScoreRow]) -> tuple[list[_Pass], list[list[int]]]:
        """Rows whose context and continuation agree up to the continuation's last token (the
        choices "A", "B", … of a question) are one forward pass. Of the rest, rows with the same
        context share its keys/values, where the context can be split before its last token
        without cutting an image. Anything else is a forward pass of its own."""
        by_input: dict[object, list[int]] = defaultdict(list)
        for i, row in enumerate(rows):
            by_input[self._key(i, row.context + row.continuation[:-1], row.images)].append(i)
        passes, by_context = [], defaultdict(list)
        for members in by_input.values():
            first = rows[members[0]]
            if len(members) > 1:
                targets = [(i, rows[i].continuation) for i in members]
                passes.append(_Pass(first.context + first.continuation[:-1], first.images, targets))
            else:
                by_context[self._key(members[0], first.context, first.images)].append(members[0])
        shared = []
        for members in by_context.values():
            context = rows[members[0]].context
            if len(members) > 1 and len(context) > 1 and context[-1] != self.image_token_id:
                shared.append(members)
                continue
            for i in members:
                row = rows[i]
                passes.append(
                    _Pass(
                        (row.context + row.continuation)[:-1], row.images, [(i, row.continuation)]
                    )
                )
        return passes, shared

    def _key(self, index: int, ids: list[int], images: list) -> object:
        if not self.share_context:
            return index
        return (tuple(ids), *map(_image_key, images))

    def _score_shared(self, group: list[ScoreRow]) -> list[tuple[float, bool]]:
        """The context's keys/values are computed once; then every continuation runs in one row
        on top of them, each segment seeing the context and its own earlier tokens only (a 4-D
        mask and explicit positions), so the cache is never copied per continuation."""
        context = group[0].context
        cached = len(context) - 1
        cache = self.model.model(
            input_ids=torch.tensor([context[:-1]], device=self.device),
            pixel_values=self._pixels(group[0].images),
            use_cache=True,
        ).past_key_values
        # Each segment re-reads the context's last token, then its continuation but the last
        # token: as long as its continuation.
        lengths = [len(row.continuation) for row in group]
        segments = [t for row in group for t in (context[-1], *row.continuation[:-1])]
        positions = torch.cat([torch.arange(n) for n in lengths]) + cached
        hidden = self.model.model(
            input_ids=torch.tensor([segments], device=self.device),
            position_ids=positions[None].to(self.device),
            attention_mask=self._segment_mask(cached, lengths),
            cache=cache,
            use_cache=True,
        ).last_hidden_state[0]
        return [
            self._continuation_score(states, row.continuation)
            for states, row in zip(hidden.split(lengths), group, strict=True)
        ]

    def _segment_mask(self, cached: int, lengths: list[int]) -> torch.Tensor:
        """Additive mask (1, 1, queries, cached + queries): all of the cache, and causal within
        each segment; what eager and SDPA attention both take as given."""
        segment = torch.repeat_interleave(torch.arange(len(lengths)), torch.tensor(lengths))
        step = torch.arange(len(segment))
        allowed = (segment[:, None] == segment[None, :]) & (step[:, None] >= step[None, :])
        allowed = torch.cat([torch.ones(len(segment), cached, dtype=torch.bool), allowed], dim=1)
        mask = torch.zeros(allowed.shape, dtype=self.model.dtype)
        mask.masked_fill_(~allowed, torch.finfo(self.model.dtype).min)
        return mask[None, None].to(self.device)

    def _score_passes(self, batch: list[_Pass]) -> list[tuple[int, tuple[float, bool]]]:
        """Each target's continuation ends where its pass's input ends."""
        hidden = self.model.model(
            input_ids=self._right_padded([p.input_ids for p in batch]),
            pixel_values=self._pixels([image for p in batch for image in p.images]),
        ).last_hidden_state
        end_of = [len(p.input_ids) for p in batch]
        return [
            (i, self._continuation_score(hidden[row, end_of[row] - len(cont) : end_of[row]], cont))
            for row, p in enumerate(batch)
            for i, cont in p.targets
        ]

    def _right_padded(self, inputs: list[list[int]]) -> torch.Tensor:
        """Right padding needs no attention mask: a real position never attends a later one."""
        input_ids = torch.full((len(inputs), max(map(len, inputs))), self.pad_id, dtype=torch.long)
        for i, ids in enumerate(inputs):
            input_ids[i, : len(ids)] = torch.tensor(ids)
        return input_ids.to(self.device)

    def _continuation_score(self, hidden: torch.Tensor, continuation: list[int]):
        logprobs = torch.log_softmax(self.model.lm_head(hidden).float(), dim=-1)
        target = torch.tensor(continuation, device=logprobs.device)
        total = logprobs.gather(1, target[:, None]).sum().item()
        return total, bool((logprobs.argmax(dim=-1) == target).all())

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
        # LLaVA's generate breaks on an explicit pixel_values=None: pass images only when given.
        pixels = self._pixels(row.images)
        images = {} if pixels is None else {"pixel_values": pixels}
        output = self.model.generate(
            input_ids=input_ids,
            attention_mask=torch.ones_like(input_ids),
            **images,
            max_new_tokens=max_new_tokens,
            stopping_criteria=stopping,
            pad_token_id=self.pad_id,
            eos_token_id=eos_token_id,
            **sampling,
        )
        return output[0, input_ids.shape[1] :].tolist()
