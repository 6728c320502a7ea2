"""The `compass` model for lm-eval: a phase checkpoint (or the tiny model) behind lm-eval's three
request types, for plain text and for requests that carry page images (`{"visual": [...]}`)."""

from __future__ import annotations

import logging
import os
from typing import Any

import torch
from lm_eval.api.instance import Instance
from lm_eval.api.model import TemplateLM
from lm_eval.models.utils import handle_stop_sequences
from lm_eval.models.utils_hf import stop_sequences_criteria
from lm_eval.utils import get_rolling_token_windows, make_disjoint_window
from tqdm import tqdm

from compass_eval.scoring import Scorer, ScoreRow, fit_to_length
from compass_model.checkpoint import load_checkpoint
from compass_model.config import IMAGE_TOKEN
from compass_model.errors import CompassInputError, print_input_errors_as_one_line

log = logging.getLogger(__name__)
print_input_errors_as_one_line()

_DTYPES = {
    "float32": torch.float32,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
}
_TRUNCATION_SIDES = ("left", "right")
_TINY_WARNING = (
    "COMPASS: no `pretrained` given, so this is the built-in TINY model with seeded RANDOM "
    "weights. Its scores mean NOTHING; pass pretrained=<phase checkpoint> to evaluate a model."
)


class CompassLM(TemplateLM):
    """model_args: pretrained, phase, dtype, device, max_length, truncation, batch_size,
    allow_pickle. Truncation cuts the context (never the continuation), from the stated side."""

    MULTIMODAL = True

    def __init__(
        self,
        pretrained: str | None = None,
        phase: str | None = None,
        dtype: str = "float32",
        device: str | None = None,
        max_length: int | None = None,
        truncation: str = "left",
        batch_size: int | str = 1,
        max_batch_size: int | None = None,
        allow_pickle: bool = False,
        **unknown: Any,
    ) -> None:
        super().__init__()
        if unknown:
            raise CompassInputError(
                f"unknown model_args key(s) for --model compass: {', '.join(sorted(unknown))}; "
                "known: pretrained, phase, dtype, device, max_length, truncation, batch_size, "
                "allow_pickle"
            )
        if dtype not in _DTYPES:
            raise CompassInputError(f"model_args dtype={dtype!r}: use one of {sorted(_DTYPES)}")
        if truncation not in _TRUNCATION_SIDES:
            raise CompassInputError(f"model_args truncation={truncation!r}: use left or right")
        self.batch_size = _parse_batch_size(batch_size)
        self.truncation = truncation
        self.accelerator = _accelerator_if_distributed()
        if self.accelerator is not None:
            self._device = self.accelerator.device
            self._rank = self.accelerator.process_index
            self._world_size = self.accelerator.num_processes
        else:
            self._device = _pick_device(device)

        self.pretrained = None if pretrained is None else str(pretrained)
        self.phase = None if phase is None else str(phase)
        if self.pretrained is None:
            from compass_model.assemble import build_tiny

            log.warning(_TINY_WARNING)
            model, self.processor = build_tiny()
            self.manifest = None
            model = model.to(device=self._device, dtype=_DTYPES[dtype])
        else:
            checkpoint = load_checkpoint(
                self.pretrained, _DTYPES[dtype], self._device, allow_pickle=bool(allow_pickle)
            )
            model, self.processor, self.manifest = (
                checkpoint.model,
                checkpoint.processor,
                checkpoint.manifest,
            )
            if self.phase is None and self.manifest:
                self.phase = self.manifest.get("phase")
        self.model = model
        self.tokenizer = self.processor.tokenizer
        self.image_token_id = self.tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)
        self.image_tokens = model.config.image_seq_length
        self._max_length = int(max_length or model.config.text_config.max_position_embeddings)
        self.scorer = Scorer(model, self.processor, self._device, pad_id=self._pad_id)

    # --- identity -------------------------------------------------------------------------

    @property
    def eot_token_id(self) -> int:
        return self.tokenizer.eos_token_id

    @property
    def prefix_token_id(self) -> int:
        bos = self.tokenizer.bos_token_id
        return self.eot_token_id if bos is None else bos

    @property
    def max_length(self) -> int:
        return self._max_length

    @property
    def tokenizer_name(self) -> str:
        return str(self.tokenizer.name_or_path).replace("/", "__")

    @property
    def _pad_id(self) -> int:
        pad = self.tokenizer.pad_token_id
        return self.eot_token_id if pad is None else pad

    def get_model_info(self) -> dict[str, Any]:
        """Merged by lm-eval into results["config"]: which phase and checkpoint produced them."""
        return {
            "compass_phase": self.phase,
            "compass_pretrained": self.pretrained or "tiny (random, seeded)",
            "compass_manifest": self.manifest,
            "compass_truncation": self.truncation,
            "compass_max_length": self.max_length,
            "compass_processes": self.world_size,
            "model_num_parameters": sum(p.numel() for p in self.model.parameters()),
            "model_dtype": str(self.model.dtype),
        }

    # --- tokenisation ----------------------------------------------------------------------

    def tok_encode(
        self, string: str, add_special_tokens: bool | None = None, **kwargs: Any
    ) -> list[int]:
        """As lm-eval's `hf` model does, so text-only scores match it token for token."""
        if add_special_tokens is None:
            bos = self.tokenizer.bos_token
            add_special_tokens = not (bos and string.startswith(bos))
        return self.tokenizer.encode(string, add_special_tokens=add_special_tokens)

    def tok_decode(self, tokens: list[int]) -> str:
        return self.tokenizer.decode(tokens, skip_special_tokens=True)

    def apply_chat_template(
        self, chat_history: list[dict[str, str]], add_generation_prompt: bool = True
    ) -> str:
        return self.processor.apply_chat_template(
            chat_history, tokenize=False, add_generation_prompt=add_generation_prompt
        )

    def _encode_with_images(self, context: str, n_images: int) -> tuple[list[int], str]:
        """Context ids up to its last text piece, with each `<image>` expanded to the image's
        tokens; returns the last piece separately so the continuation splits as for text."""
        pieces = context.split(IMAGE_TOKEN)
        missing = n_images - (len(pieces) - 1)
        if missing < 0:
            raise CompassInputError(
                f"a request has {len(pieces) - 1} {IMAGE_TOKEN} marks but {n_images} image(s): "
                "the task's doc_to_image must give one image per mark"
            )
        # Images without a mark in the text go first, as a chat template would place them.
        pieces = [""] * missing + pieces
        ids = self.tok_encode(pieces[0])
        for piece in pieces[1:-1]:
            ids += [self.image_token_id] * self.image_tokens
            ids += self.tok_encode(piece, add_special_tokens=False)
        ids += [self.image_token_id] * self.image_tokens
        return ids, pieces[-1]

    def _encode_request(
        self, context: str, continuation: str, images: list
    ) -> tuple[list[int], list[int]]:
        if not images:
            if context == "":
                cont = self.tok_encode(continuation, add_special_tokens=False)
                return (
                    ([self.prefix_token_id], cont)
                    if cont[0] != self.prefix_token_id
                    else (
                        cont[:1],
                        cont[1:],
                    )
                )
            return self._encode_pair(context, continuation)
        head, tail = self._encode_with_images(context, len(images))
        n_spaces = len(tail) - len(tail.rstrip())
        if n_spaces:
            tail, continuation = tail[:-n_spaces], tail[-n_spaces:] + continuation
        tail_ids = self.tok_encode(tail, add_special_tokens=False)
        whole = self.tok_encode(tail + continuation, add_special_tokens=False)
        return head + tail_ids, whole[len(tail_ids) :]

    # --- lm-eval's request types -------------------------------------------------------------

    def loglikelihood(
        self, requests: list[Instance], disable_tqdm: bool = False
    ) -> list[tuple[float, bool]]:
        rows = []
        for request in requests:
            context, continuation, images = _unpack(request.args)
            ctx_ids, cont_ids = self._encode_request(context, continuation, images)
            rows.append(ScoreRow(ctx_ids, cont_ids, images))
        return self._score(rows, disable_tqdm, "loglikelihood")

    def _loglikelihood_tokens(self, requests, disable_tqdm: bool = False, **kwargs):
        rows = [ScoreRow(list(ctx), list(cont), []) for _, ctx, cont in requests]
        return self._score(rows, disable_tqdm, "loglikelihood")

    def loglikelihood_rolling(
        self, requests: list[Instance], disable_tqdm: bool = False
    ) -> list[float]:
        totals = []
        for request in tqdm(requests, disable=disable_tqdm or self.rank != 0, desc="rolling"):
            (text, *_) = request.args
            windows = get_rolling_token_windows(
                token_list=self.tok_encode(text),
                prefix_token=self.prefix_token_id,
                max_seq_len=self.max_length,
                context_len=1,
            )
            rows = [ScoreRow(list(c), list(t), []) for c, t in map(make_disjoint_window, windows)]
            totals.append(sum(logprob for logprob, _ in self._score(rows, True, "rolling")))
        return totals

    def generate_until(self, requests: list[Instance], disable_tqdm: bool = False) -> list[str]:
        outputs: list[str] = []
        for request in tqdm(requests, disable=disable_tqdm or self.rank != 0, desc="generate"):
            context, gen_kwargs, images = _unpack(request.args)
            outputs.append(self._generate_one(context, dict(gen_kwargs), images))
        return outputs

    # --- internals ---------------------------------------------------------------------------

    def _score(self, rows: list[ScoreRow], disable_tqdm: bool, what: str):
        fitted = [
            fit_to_length(
                row, self.max_length + 1, self.truncation, self.image_token_id, self.image_tokens
            )
            for row in rows
        ]
        return self.scorer.loglikelihoods(
            fitted, self.batch_size, progress=not disable_tqdm and self.rank == 0, desc=what
        )

    def _generate_one(self, context: str, gen_kwargs: dict[str, Any], images: list) -> str:
        until = handle_stop_sequences(
            gen_kwargs.pop("until", None),
            eos=self.tokenizer.decode([self.eot_token_id], skip_special_tokens=False),
        )
        max_new = int(gen_kwargs.pop("max_gen_toks", 256))
        if images:
            ids, tail = self._encode_with_images(context, len(images))
            ids += self.tok_encode(tail, add_special_tokens=False)
        else:
            ids = self.tok_encode(context)
        row = fit_to_length(
            ScoreRow(ids, [], images),
            self.max_length - max_new,
            self.truncation,
            self.image_token_id,
            self.image_tokens,
        )
        do_sample = bool(gen_kwargs.pop("do_sample", False))
        temperature = float(gen_kwargs.pop("temperature", 0.0))
        if temperature == 0.0:
            do_sample = False
        sampling = {"do_sample": do_sample}
        if do_sample:
            sampling["temperature"] = temperature
        stopping = stop_sequences_criteria(self.tokenizer, until, len(row.context), 1)
        new_tokens = self.scorer.generate(
            row, max_new, stopping, {**sampling, **gen_kwargs}, self.eot_token_id
        )
        text = self.tokenizer.decode(new_tokens, skip_special_tokens=True)
        for stop in until:
            if stop:
                text = text.split(stop)[0]
        return text

    # --- data parallel (accelerate launch), as lm-eval's `hf` model ---------------------------

    def all_gather(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor if self.accelerator is None else self.accelerator.gather(tensor)

    def gather_object(self, obj: Any, dst: int = 0) -> list[Any] | None:
        if self.accelerator is None:
            return [obj]
        gathered = [None] * self.world_size if self.rank == dst else None
        torch.distributed.gather_object(obj=obj, object_gather_list=gathered, dst=dst)
        return gathered

    def barrier(self) -> None:
        if self.accelerator is not None:
            self.accelerator.wait_for_everyone()


def _unpack(args: tuple) -> tuple[str, Any, list]:
    """(context, continuation-or-gen_kwargs[, {"visual": images}]) with images as a list."""
    context, second, *rest = args
    visual = (rest[0] or {}).get("visual") if rest else None
    if visual is None:
        images = []
    elif isinstance(visual, list | tuple):
        images = list(visual)
    else:
        images = [visual]
    if any(image is None for image in images):
        raise CompassInputError(
            "an image request carries no image (None): check the task's doc_to_image and that "
            "every document's image file exists"
        )
    return context, second, images


def _parse_batch_size(value: int | str) -> int:
    try:
        size = int(value)
    except (TypeError, ValueError):
        raise CompassInputError(
            f"batch_size={value!r}: give a whole number (automatic batch sizing is not supported)"
        ) from None
    if size < 1:
        raise CompassInputError(f"batch_size={value!r}: must be at least 1")
    return size


def _pick_device(requested: str | None) -> torch.device:
    """lm_eval's CLI asks for cuda by default: fall back to the CPU, saying so, where there is none."""
    if requested and not requested.startswith("cuda"):
        return torch.device(requested)
    if torch.cuda.is_available():
        return torch.device(requested or "cuda")
    if requested:
        log.warning("device=%s requested but CUDA is not available: running on the CPU", requested)
    return torch.device("cpu")


def _accelerator_if_distributed():
    """An Accelerator only under a multi-process launch (accelerate launch sets WORLD_SIZE)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return None
    from datetime import timedelta

    from accelerate import Accelerator, InitProcessGroupKwargs

    # Without a GPU, accelerate sets up the processes (gloo) only when told to use the CPU.
    return Accelerator(
        cpu=not torch.cuda.is_available(),
        kwargs_handlers=[InitProcessGroupKwargs(timeout=timedelta(hours=12))],
    )
