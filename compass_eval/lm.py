"""The `compass` model for lm-eval: a phase checkpoint (or the tiny model) behind lm-eval's three
request types, for plain text and for requests that carry page images (`{"visual": [...]}`)."""

from __future__ import annotations

import logging
import os
from typing import Any

import torch
from lm_eval.api.instance import Instance
from lm_eval.api.model import TemplateLM
from lm_eval.models.utils import Collator, handle_stop_sequences, normalize_gen_kwargs
from lm_eval.utils import get_rolling_token_windows, make_disjoint_window, simple_parse_args_string
from tqdm import tqdm

from compass_eval.model_args import parse_model_args
from compass_eval.scoring import Scorer, ScoreRow, fit_to_length
from compass_model.checkpoint import check_checkpoint_dir, load_checkpoint
from compass_model.config import IMAGE_TOKEN
from compass_model.dtypes import torch_dtype
from compass_model.errors import CompassInputError

log = logging.getLogger(__name__)

# What lm-eval's CLI passes for --batch_size / --device when the flag is not given (a given
# --batch_size arrives as text, "1"; a given --device cuda:0 cannot be told from no flag): a
# --model_args value is kept over these, any other flag value wins.
_LM_EVAL_FLAG_DEFAULTS = {"batch_size": 1, "device": "cuda:0"}
_GENERATE_DEFAULT_MAX_TOKENS = 256
_TINY_WARNING = (
    "COMPASS: no `pretrained` given, so this is the built-in TINY model with seeded RANDOM "
    "weights. Its scores mean NOTHING; pass pretrained=<phase checkpoint> to evaluate a model."
)


class CompassLM(TemplateLM):
    """`model_args` as `ModelArgs` declares them (`compass_eval/model_args.py`). Truncation cuts
    the context (never the continuation) from the stated side; `middle` keeps its first
    `keep_head_tokens` (chat prefix, system turn, instructions) and its end, and cuts what lies
    between."""

    MULTIMODAL = True

    def __init__(self, **model_args: Any) -> None:
        super().__init__()
        args = parse_model_args(model_args)
        self.keep_head_tokens = args.keep_head_tokens
        self.truncated_requests = 0
        self.batch_size = args.batch_size
        self.max_batch_size = args.max_batch_size
        self._auto_batch_sizes: dict[str, int] = {}
        self.add_bos_token = args.add_bos_token
        if args.pretrained is not None:  # before any device or model is set up
            check_checkpoint_dir(args.pretrained, args.allow_pickle)
        self.truncation = args.truncation
        self.accelerator = _accelerator_if_distributed()
        if self.accelerator is not None:
            self._device = self.accelerator.device
            self._rank = self.accelerator.process_index
            self._world_size = self.accelerator.num_processes
        else:
            self._device = _pick_device(args.device)

        self.pretrained = args.pretrained
        self.phase = args.phase
        if self.pretrained is None:
            from compass_model.assemble import build_tiny

            log.warning(_TINY_WARNING)
            model, self.processor = build_tiny()
            self.manifest = None
            model = model.to(device=self._device, dtype=torch_dtype(args.dtype))
        else:
            checkpoint = load_checkpoint(
                self.pretrained, torch_dtype(args.dtype), self._device, args.allow_pickle
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
        self._max_length = args.max_length or model.config.text_config.max_position_embeddings
        self.scorer = Scorer(model, self.processor, self._device, pad_id=self._pad_id)

    @classmethod
    def create_from_arg_string(
        cls, arg_string: str, additional_config: dict | None = None
    ) -> CompassLM:
        return cls.create_from_arg_obj(simple_parse_args_string(arg_string), additional_config)

    @classmethod
    def create_from_arg_obj(
        cls, arg_dict: dict[str, Any], additional_config: dict | None = None
    ) -> CompassLM:
        """lm-eval passes --batch_size, --max_batch_size and --device beside --model_args:
        one value per key, the flag's where both are given."""
        return cls(**_merge_flags(dict(arg_dict), additional_config or {}))

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
            "compass_keep_head_tokens": self.keep_head_tokens,
            "compass_truncated_requests": self.truncated_requests,
            "compass_add_bos_token": self.add_bos_token,
            "compass_batch_size": self.batch_size,
            "compass_device": str(self._device),
            "compass_max_length": self.max_length,
            "compass_processes": self.world_size,
            "model_num_parameters": sum(p.numel() for p in self.model.parameters()),
            "model_dtype": str(self.model.dtype),
        }

    # --- tokenisation ----------------------------------------------------------------------

    def tok_encode(
        self, string: str, add_special_tokens: bool | None = None, **kwargs: Any
    ) -> list[int]:
        """As lm-eval's `hf` model does, so text-only scores match it token for token;
        add_bos_token=False adds no BOS, as lm-eval's vLLM backend does."""
        if add_special_tokens is None:
            bos = self.tokenizer.bos_token
            add_special_tokens = self.add_bos_token and not (bos and string.startswith(bos))
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
        """Batches of requests with equal generation settings, longest prompt first (lm-eval's
        Collator, which also puts the answers back in the requests' order)."""
        collator = Collator(
            [request.args for request in requests],
            sort_fn=lambda args: (-len(self.tok_encode(args[0])), args[0]),
            group_by="gen_kwargs",
            group_fn=lambda args: args[1],
        )
        bar = tqdm(total=len(requests), disable=disable_tqdm or self.rank != 0, desc="generate")
        outputs = []
        for chunk in collator.get_batched(n=self._generation_batch_size(requests)):
            outputs += self._generate_batch(chunk)
            bar.update(len(chunk))
        bar.close()
        return collator.get_original(outputs)

    # --- internals ---------------------------------------------------------------------------

    def _batch_size_for(self, kind: str, longest: int) -> int:
        """A number as given; `auto` is found once per request type, for its longest input."""
        if self.batch_size != "auto":
            return self.batch_size
        if kind not in self._auto_batch_sizes:
            size = self.scorer.largest_batch(longest, self.max_batch_size)
            log.info("batch_size=auto: %d for %s (inputs up to %d tokens)", size, kind, longest)
            self._auto_batch_sizes[kind] = size
        return self._auto_batch_sizes[kind]

    def _generation_batch_size(self, requests: list[Instance]) -> int:
        if self.batch_size != "auto" or not requests:
            return self._batch_size_for("generate_until", 0)
        longest = max(len(self.tok_encode(request.args[0])) for request in requests)
        most_new = max(_generation_settings(request.args[1])[1] for request in requests)
        return self._batch_size_for("generate_until", min(longest + most_new, self.max_length))

    def _score(self, rows: list[ScoreRow], disable_tqdm: bool, what: str):
        fitted = [self._fit(row, self.max_length + 1) for row in rows]
        longest = max((len(row.context) + len(row.continuation) for row in fitted), default=0)
        return self.scorer.loglikelihoods(
            fitted,
            self._batch_size_for("loglikelihood", longest),
            progress=not disable_tqdm and self.rank == 0,
            desc=what,
        )

    def _prompt_ids(self, context: str, images: list) -> list[int]:
        if not images:
            return self.tok_encode(context)
        ids, tail = self._encode_with_images(context, len(images))
        return ids + self.tok_encode(tail, add_special_tokens=False)

    def _fit(self, row: ScoreRow, limit: int) -> ScoreRow:
        """The row cut to `limit` tokens by the stated policy; cut rows are counted."""
        fitted = fit_to_length(
            row,
            limit,
            self.truncation,
            self.image_token_id,
            self.image_tokens,
            keep_head=self.keep_head_tokens,
        )
        self.truncated_requests += len(fitted.context) < len(row.context)
        return fitted

    def _generate_batch(self, chunk: list[tuple]) -> list[str]:
        """One batch of requests whose generation settings are equal (the Collator's groups)."""
        requests = [_unpack(args) for args in chunk]
        until, max_new, sampling = _generation_settings(
            requests[0][1], eos=self.tokenizer.decode([self.eot_token_id])
        )
        rows = [
            self._fit(
                ScoreRow(self._prompt_ids(context, images), [], images), self.max_length - max_new
            )
            for context, _, images in requests
        ]
        generated = self.scorer.generate(rows, max_new, until, sampling, self.eot_token_id)
        texts = []
        for new_tokens in generated:
            text = self.tokenizer.decode(new_tokens, skip_special_tokens=True)
            for stop in until:
                if stop:
                    text = text.split(stop)[0]
            texts.append(text)
        return texts

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


def _generation_settings(
    gen_kwargs: dict[str, Any], eos: str | None = None
) -> tuple[list[str], int, dict[str, Any]]:
    """(stop strings with the EOS text added, most new tokens, the rest for `generate`)."""
    settings = normalize_gen_kwargs(dict(gen_kwargs), _GENERATE_DEFAULT_MAX_TOKENS)
    until = handle_stop_sequences(settings.pop("until", None), eos=eos)
    max_new = int(settings.pop("max_gen_toks"))
    temperature = float(settings.pop("temperature", 0.0))
    do_sample = bool(settings.pop("do_sample", False)) and temperature > 0.0
    sampling = {"do_sample": do_sample, **({"temperature": temperature} if do_sample else {})}
    return until, max_new, {**sampling, **settings}


def _merge_flags(model_args: dict[str, Any], flags: dict[str, Any]) -> dict[str, Any]:
    """--model_args plus lm-eval's own flags: a flag wins, unless it holds what lm-eval passes
    when the flag is not given; a conflict is named in one line."""
    merged = dict(model_args)
    for key, value in flags.items():
        if value is None:
            continue
        if key not in model_args:
            merged[key] = value
        elif str(model_args[key]) != str(value) and not _is_lm_eval_default(key, value):
            log.warning(
                "--%s %s overrides model_args %s=%s: using %s",
                key,
                value,
                key,
                model_args[key],
                value,
            )
            merged[key] = value
    return merged


def _is_lm_eval_default(key: str, value: Any) -> bool:
    default = _LM_EVAL_FLAG_DEFAULTS.get(key)
    return type(value) is type(default) and value == default


def _pick_device(requested: str | int | None) -> torch.device:
    """lm_eval's CLI asks for cuda by default: fall back to the CPU, saying so, where there is none."""
    requested = None if requested is None else str(requested)
    if requested and not requested.startswith("cuda"):
        try:
            return torch.device(requested)
        except RuntimeError:
            raise CompassInputError(
                f"device={requested!r}: not a torch device; use cpu, cuda, cuda:N or mps"
            ) from None
    if torch.cuda.is_available():
        return torch.device(requested or "cuda")
    # lm-eval passes cuda:0 when no --device was given: nothing was asked, nothing to warn about.
    if requested and requested != _LM_EVAL_FLAG_DEFAULTS["device"]:
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
