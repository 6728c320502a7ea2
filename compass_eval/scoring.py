"""Scoring and generation on token ids: the model-facing half of the `compass` LM.

Scoring: the rows that share a context (and its images) are one group, laid out as a token trie:
the context once, then each continuation's tokens but the last, where continuations that begin
alike (the choices アイ, アウ, … of one question) share their first tokens too. So every distinct
prefix is computed once. Several groups are packed into each forward row, every token attending
to its own ancestors only (a block-diagonal mask with explicit positions), and a batch's
log-probabilities come from one output-layer pass over its scored positions only (long contexts
never materialise a sequence × vocabulary tensor) and one transfer to the host.

Generation: a batch of left-padded prompts with their images, each row stopping at its own stop
strings.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import torch
from tqdm import tqdm
from transformers import StoppingCriteria, StoppingCriteriaList

from compass_model.errors import CompassInputError

#: The most rows (groups when scoring, prompts when generating) `batch_size=auto` gives on a CPU,
#: where memory is rarely the limit and larger batches only add padding.
CPU_AUTO_BATCH = 8
#: A scoring batch closes early rather than pad past this share of the tokens it needs: groups
#: of very different lengths (the longest first) do not fill one row width.
MAX_PADDING = 0.05


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
    row: ScoreRow, limit: int, side: str, image_token_id: int, block: int, keep_head: int = 0
) -> ScoreRow:
    """Cuts the context (never the continuation) so context + continuation ≤ `limit` tokens.

    `left` cuts its start, `right` its end, `middle` what follows its first `keep_head` tokens.
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
    if side == "middle":
        first = min(keep_head, len(row.context) - excess)
        for start in starts:
            if start < first < start + block:
                first = start
        last = first + excess
        for start in starts:
            if start < last < start + block:
                last = start + block
        kept = [
            image
            for image, start in zip(row.images, starts, strict=True)
            if start + block <= first or start >= last
        ]
        return ScoreRow(row.context[:first] + row.context[last:], row.continuation, kept)
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
class _Group:
    """The rows of one context as a token trie. Nodes are numbered parents first: the context
    is nodes 0…C-1; `ancestors[j]` are the branch nodes (≥ C) from the context's end down to
    branch node C+j, itself included.
    `scored[k]` are the nodes whose outputs predict row `rows[k]`'s continuation tokens."""

    tokens: list[int]
    depths: list[int]
    context_length: int
    ancestors: list[list[int]]
    images: list
    rows: list[int]
    scored: list[list[int]]

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def is_a_path(self) -> bool:
        """No branching (one-token answers, or answers that differ only in their last token):
        node i sees nodes 0…i, plain causal attention."""
        return all(len(path) == j + 1 for j, path in enumerate(self.ancestors))


def _build_group(rows: list[ScoreRow], members: list[int]) -> _Group:
    first = rows[members[0]]
    context = first.context
    if not context:
        raise CompassInputError("a request has an empty context: lm-eval always gives one token")
    tokens, depths = list(context), list(range(len(context)))
    ancestors: list[list[int]] = []
    child: dict[tuple[int, int], int] = {}
    scored = []
    for i in members:
        # An empty continuation (a tokenizer merging it into the context) scores 0, greedily.
        node, path = len(context) - 1, []
        nodes = [node] if rows[i].continuation else []
        for token in rows[i].continuation[:-1]:
            key = (node, token)
            if key not in child:
                child[key] = len(tokens)
                tokens.append(token)
                depths.append(depths[node] + 1)
                ancestors.append([*path, len(tokens) - 1])
            node = child[key]
            path.append(node)
            nodes.append(node)
        scored.append(nodes)
    return _Group(tokens, depths, len(context), ancestors, first.images, members, scored)


def _allowed(group: _Group) -> torch.Tensor:
    """(n, n) boolean: node i may attend node j iff j is i itself or one of its ancestors."""
    n, c = len(group), group.context_length
    allowed = torch.zeros(n, n, dtype=torch.bool)
    allowed[:c, :c] = torch.ones(c, c, dtype=torch.bool).tril_()
    allowed[c:, :c] = True
    for j, path in enumerate(group.ancestors):
        allowed[c + j, path] = True
    return allowed


def _image_key(image) -> str:
    """Equal pictures give equal keys, whichever object lm-eval handed over."""
    digest = hashlib.sha1(image.tobytes(), usedforsecurity=False).hexdigest()
    return f"{image.mode}{image.size}{digest}"


def _batches(groups: list[_Group], batch_size: int) -> list[list[_Group]]:
    """Consecutive groups (longest first), `batch_size` per batch, halved until the packed rows
    pad no more than MAX_PADDING of the tokens they need."""
    batches: list[list[_Group]] = []
    start = 0
    while start < len(groups):
        size = batch_size
        while size > 1 and _padding(groups[start : start + size]) > MAX_PADDING:
            size //= 2
        batches.append(groups[start : start + size])
        start += len(batches[-1])
    return batches


def _padding(batch: list[_Group]) -> float:
    needed = sum(map(len, batch))
    return len(_pack(batch)) * max(map(len, batch)) / needed - 1


def _pack(groups: list[_Group]) -> list[list[tuple[int, int]]]:
    """First-fit decreasing into rows as long as the longest group: per row, (group, offset)."""
    capacity = max(map(len, groups))
    rows: list[list[tuple[int, int]]] = []
    free: list[int] = []
    for g in sorted(range(len(groups)), key=lambda g: -len(groups[g])):
        size = len(groups[g])
        for r, room in enumerate(free):
            if size <= room:
                rows[r].append((g, capacity - room))
                free[r] -= size
                break
        else:
            rows.append([(g, 0)])
            free.append(capacity - size)
    return rows


class Scorer:
    """Runs a LLaVA-layout model on rows of ids: log-likelihoods of continuations, and greedy or
    sampled generation. `share_context=False` gives every row a group of its own (the reference
    path). `tokens_computed` / `tokens_needed` count the positions run through the model
    (padding included) and the distinct prefixes of each context's rows, the least any scorer
    that shares nothing across contexts must compute; `scoring_passes` the forward passes."""

    def __init__(
        self, model, processor, device: torch.device, pad_id: int, share_context: bool = True
    ) -> None:
        self.model = model
        self.share_context = share_context
        self.processor = processor
        self.device = device
        self.pad_id = pad_id
        self.tokens_computed = 0
        self.tokens_needed = 0
        self.scoring_passes = 0

    def _pixels(self, images: list) -> torch.Tensor | None:
        if not images:
            return None
        pixels = self.processor.image_processor(images, return_tensors="pt")["pixel_values"]
        return pixels.to(self.device, self.model.dtype)

    def groups(self, rows: list[ScoreRow]) -> list[_Group]:
        """One group per distinct (context, images), longest first: the first batch shows the
        worst-case memory at once."""
        by_context: dict[object, list[int]] = defaultdict(list)
        for i, row in enumerate(rows):
            key = (tuple(row.context), *map(_image_key, row.images)) if self.share_context else i
            by_context[key].append(i)
        groups = [_build_group(rows, members) for members in by_context.values()]
        return sorted(groups, key=lambda g: -len(g))

    @torch.inference_mode()
    def loglikelihoods(
        self, rows: list[ScoreRow], batch_size: int, progress: bool = False, desc: str = ""
    ) -> list[tuple[float, bool]]:
        """(sum of log-probabilities of the continuation, whether it is the greedy choice);
        up to `batch_size` groups per forward pass."""
        results: list[tuple[float, bool] | None] = [None] * len(rows)
        bar = tqdm(total=len(rows), disable=not progress, desc=desc)
        for batch in _batches(self.groups(rows), batch_size):
            indices = [i for group in batch for i in group.rows]
            for i, result in zip(indices, self._score_batch(rows, batch), strict=True):
                results[i] = result
            bar.update(len(indices))
        bar.close()
        return results  # type: ignore[return-value]

    def _score_batch(self, rows: list[ScoreRow], batch: list[_Group]) -> list[tuple[float, bool]]:
        """Results for every row of `batch`, group by group, in each group's row order."""
        layout = _pack(batch)
        width = max(map(len, batch))
        input_ids = torch.full((len(layout), width), self.pad_id, dtype=torch.long)
        positions = torch.zeros((len(layout), width), dtype=torch.long)
        # Padding attends to itself only, so no query row is empty.
        allowed = torch.eye(width, dtype=torch.bool).repeat(len(layout), 1, 1)
        images, flat_of = [], {}
        for r, placed in enumerate(layout):
            for g, offset in placed:
                group, end = batch[g], offset + len(batch[g])
                input_ids[r, offset:end] = torch.tensor(group.tokens)
                positions[r, offset:end] = torch.tensor(group.depths)
                allowed[r, offset:end, offset:end] = _allowed(group)
                images += group.images
                flat_of[g] = r * width + offset
        self.tokens_computed += input_ids.numel()
        self.tokens_needed += sum(map(len, batch))
        self.scoring_passes += 1

        # Every scored position, its target token and the row (within the batch) it counts for.
        scored, targets, lengths = [], [], []
        for g, group in enumerate(batch):
            for k, i in enumerate(group.rows):
                scored += [flat_of[g] + node for node in group.scored[k]]
                targets += rows[i].continuation
                lengths.append(len(rows[i].continuation))
        owner = torch.repeat_interleave(torch.arange(len(lengths)), torch.tensor(lengths))
        owner = owner.to(self.device)

        # One unbranched group per row is plain causal attention over right padding: no mask,
        # so attention takes its fast path.
        plain = all(len(placed) == 1 and batch[placed[0][0]].is_a_path for placed in layout)
        layout_args = (
            {}
            if plain
            else {
                "position_ids": positions.to(self.device),
                "attention_mask": self._attention_mask(allowed),
            }
        )
        hidden = self.model.model(
            input_ids=input_ids.to(self.device),
            pixel_values=self._pixels(images),
            **layout_args,
        ).last_hidden_state
        states = hidden.reshape(-1, hidden.shape[-1])[
            torch.tensor(scored, dtype=torch.long, device=self.device)
        ]
        logprobs = torch.log_softmax(self.model.lm_head(states).float(), dim=-1)
        target = torch.tensor(targets, dtype=torch.long, device=self.device)
        picked = logprobs.gather(1, target[:, None])[:, 0]
        missed = (logprobs.argmax(dim=-1) != target).float()
        totals = torch.zeros(len(lengths), device=self.device).index_add_(0, owner, picked)
        misses = torch.zeros(len(lengths), device=self.device).index_add_(0, owner, missed)
        return [
            (total, miss == 0.0)
            for total, miss in torch.stack([totals, misses], dim=1).cpu().tolist()
        ]

    def _attention_mask(self, allowed: torch.Tensor) -> torch.Tensor:
        """(rows, 1, n, n): boolean for SDPA, additive for implementations that add the mask."""
        mask = allowed[:, None]
        if self.model.config.text_config._attn_implementation != "sdpa":
            additive = torch.zeros(mask.shape, dtype=self.model.dtype)
            mask = additive.masked_fill_(~mask, torch.finfo(self.model.dtype).min)
        return mask.to(self.device)

    @torch.inference_mode()
    def largest_batch(self, length: int, cap: int | None) -> int:
        """`batch_size=auto`: on CUDA, the most rows of `length` tokens that one forward pass
        with log-probabilities at every position holds (more than scoring needs), halving from
        `cap` (default 64) at each out-of-memory error; elsewhere `cap` or CPU_AUTO_BATCH."""
        if self.device.type != "cuda":
            return cap or CPU_AUTO_BATCH
        size = cap or 64
        while size > 1:
            try:
                ids = torch.full((size, max(length, 1)), self.pad_id, device=self.device)
                hidden = self.model.model(input_ids=ids).last_hidden_state
                torch.log_softmax(self.model.lm_head(hidden).float(), dim=-1)
                return size
            except torch.cuda.OutOfMemoryError:
                size //= 2
            finally:
                torch.cuda.empty_cache()
        return 1

    @torch.inference_mode()
    def generate(
        self,
        rows: list[ScoreRow],
        max_new_tokens: int,
        stops: list[str],
        sampling: dict[str, Any],
        eos_token_id: int,
    ) -> list[list[int]]:
        """New tokens of each prompt, generated as one left-padded batch."""
        width = max(len(row.context) for row in rows)
        input_ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
        for r, row in enumerate(rows):
            input_ids[r, width - len(row.context) :] = torch.tensor(row.context)
            attention_mask[r, width - len(row.context) :] = 1
        # LLaVA's generate breaks on an explicit pixel_values=None: pass images only when given.
        pixels = self._pixels([image for row in rows for image in row.images])
        images = {} if pixels is None else {"pixel_values": pixels}
        stopping = StoppingCriteriaList(
            [_StopAtStrings(self.processor.tokenizer, stops, width)] if stops else []
        )
        self.tokens_computed += input_ids.numel()
        output = self.model.generate(
            input_ids=input_ids.to(self.device),
            attention_mask=attention_mask.to(self.device),
            **images,
            max_new_tokens=max_new_tokens,
            stopping_criteria=stopping,
            pad_token_id=self.pad_id,
            eos_token_id=eos_token_id,
            # Keys/values in one buffer sized for prompt + new tokens, instead of a cache that
            # is concatenated anew at every step (a fifth of the time on a CPU).
            cache_implementation="static",
            **sampling,
        )
        return output[:, width:].tolist()


class _StopAtStrings(StoppingCriteria):
    """Finishes each row once any stop string appears in what it generated, so the batch ends
    when every row is done (lm-eval's criterion waits until one string appeared in all rows)."""

    def __init__(self, tokenizer, stops: list[str], start: int) -> None:
        self.tokenizer = tokenizer
        self.stops = stops
        self.start = start
        # A stop string may be generated as more tokens than it encodes to: look two further back.
        self.lookback = max(len(tokenizer.encode(s, add_special_tokens=False)) for s in stops) + 2

    def __call__(self, input_ids: torch.Tensor, scores, **kwargs) -> torch.Tensor:
        tails = self.tokenizer.batch_decode(input_ids[:, self.start :][:, -self.lookback :])
        done = [any(stop in tail for stop in self.stops) for tail in tails]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)
