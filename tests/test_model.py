"""The model package: presets, tokenizer, processor, page images, assembly and checkpoints."""

from __future__ import annotations

import pytest
import torch
from PIL import Image
from transformers import (
    AutoModelForImageTextToText,
    LlamaConfig,
    LlamaForCausalLM,
    SiglipVisionConfig,
    SiglipVisionModel,
)

from compass_model.assemble import assemble, build_on_meta, build_tiny
from compass_model.checkpoint import (
    CheckpointError,
    check_checkpoint_dir,
    load_checkpoint,
    read_manifest,
    save_checkpoint,
)
from compass_model.config import IMAGE_TOKEN, PAPER, TINY
from compass_model.pages import render_page
from compass_model.tokenizer import tiny_tokenizer


def test_paper_preset_shapes_on_meta_device():
    model = build_on_meta(PAPER)
    assert PAPER.image_tokens == 729 == (384 // 14) ** 2
    projector = model.model.multi_modal_projector
    assert (projector.linear_1.in_features, projector.linear_1.out_features) == (1152, 4096)
    assert (projector.linear_2.in_features, projector.linear_2.out_features) == (4096, 4096)
    assert sum(p.numel() for p in projector.parameters()) == 21_504_000
    language = sum(p.numel() for p in model.model.language_model.parameters())
    language += model.lm_head.weight.numel()
    # llm-jp-4-8B's model card: 805,306,368 embedding + 7,784,894,464 other parameters.
    assert language == 8_590_200_832
    total = sum(p.numel() for p in model.parameters())
    assert 8.9e9 < total < 9.1e9
    assert all(p.device.type == "meta" for p in model.parameters())


def test_tiny_tokenizer_round_trips_japanese_and_has_image_token():
    tokenizer = tiny_tokenizer()
    text = "親会社株主に帰属する当期純利益は、前期比12.5%増の3,456百万円でした。🙂"
    ids = tokenizer.encode(text, add_special_tokens=False)
    assert tokenizer.decode(ids) == text
    assert tokenizer.encode(text)[0] == tokenizer.bos_token_id
    assert tokenizer.convert_tokens_to_ids(IMAGE_TOKEN) != tokenizer.unk_token_id
    assert len(tokenizer) == TINY.text["vocab_size"]


def test_tiny_model_is_seeded():
    first, _ = build_tiny()
    second, _ = build_tiny()
    other, _ = build_tiny(seed=7)
    weight = "model.multi_modal_projector.linear_1.weight"
    assert torch.equal(first.state_dict()[weight], second.state_dict()[weight])
    assert not torch.equal(first.state_dict()[weight], other.state_dict()[weight])


def _japanese_pdf(path):
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    pdfmetrics.registerFont(UnicodeCIDFont("HeiseiKakuGo-W5"))
    page = canvas.Canvas(str(path), pagesize=A4)
    page.setFont("HeiseiKakuGo-W5", 24)
    page.drawString(72, 760, "令和5年度 歳出総額 114兆円")
    page.rect(72, 600, 300, 100, fill=1)
    page.showPage()
    page.save()


def test_pdf_page_becomes_model_input(tmp_path):
    pdf = tmp_path / "page.pdf"
    _japanese_pdf(pdf)
    image = render_page(pdf, 0, longest_side=PAPER.image_size)
    assert max(image.size) == 384
    # Not blank: the text and the filled rectangle are drawn.
    assert image.convert("L").getextrema()[0] < 50
    model, processor = build_tiny()
    prompt = processor.apply_chat_template(
        [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "読んで"}]}],
        tokenize=False,
        add_generation_prompt=True,
    )
    inputs = processor(images=[image], text=prompt, return_tensors="pt", add_special_tokens=False)
    assert inputs["pixel_values"].shape == (1, 3, TINY.image_size, TINY.image_size)
    assert int((inputs["input_ids"] == model.config.image_token_id).sum()) == TINY.image_tokens
    with torch.inference_mode():
        logits = model(**inputs).logits
    assert logits.shape[1] == inputs["input_ids"].shape[1]


def test_checkpoint_round_trip_through_auto_class(tmp_path):
    model, processor = build_tiny()
    manifest = {"phase": "p1", "parent": "p0"}
    saved = save_checkpoint(model, processor, tmp_path / "p1", manifest)
    reloaded = AutoModelForImageTextToText.from_pretrained(saved).eval()
    image = Image.new("RGB", (40, 30), (200, 10, 10))
    inputs = processor(
        images=[image], text="<s><image>売上高", return_tensors="pt", add_special_tokens=False
    )
    with torch.inference_mode():
        before = model(**inputs).logits
        after = reloaded(**inputs).logits
    assert torch.allclose(before, after, atol=1e-5, rtol=0)
    assert read_manifest(saved) == manifest
    assert load_checkpoint(saved).manifest == manifest
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "staging dir left"


def test_assembles_from_local_backbones(tmp_path):
    vision = SiglipVisionModel(
        SiglipVisionConfig(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=2,
            image_size=32,
            patch_size=8,
        )
    )
    vision.save_pretrained(tmp_path / "vision")
    tokenizer = tiny_tokenizer()
    language = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=len(tokenizer),
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=1,
            num_attention_heads=4,
        )
    )
    language.save_pretrained(tmp_path / "llm")
    tokenizer.save_pretrained(tmp_path / "llm")

    model, processor = assemble(TINY, str(tmp_path / "vision"), str(tmp_path / "llm"))
    towers = model.model.vision_tower.state_dict()
    pretrained = vision.state_dict()
    # Everything but SigLIP's pooling head, which LLaVA never uses, comes from the backbone.
    assert set(towers) == {name for name in pretrained if not name.startswith("head.")}
    for name, tensor in towers.items():
        assert torch.equal(tensor, pretrained[name]), name
    assert model.config.vision_config.vision_use_head is False
    assert torch.equal(model.lm_head.weight, language.lm_head.weight)
    assert processor.tokenizer.convert_tokens_to_ids(IMAGE_TOKEN) == model.config.image_token_id


def test_checkpoint_checks_name_the_problem(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        check_checkpoint_dir(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="no config.json"):
        check_checkpoint_dir(tmp_path / "empty")
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    (pickled / "config.json").write_text("{}")
    (pickled / "pytorch_model.bin").write_bytes(b"\x80")
    with pytest.raises(CheckpointError, match="pickle"):
        check_checkpoint_dir(pickled)
    assert check_checkpoint_dir(pickled, allow_pickle=True) == pickled
