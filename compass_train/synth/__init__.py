"""Training data from public documents: synthetic page data from government PDFs with a teacher
VLM (OCR, two-turn VQA, financial QA) and chain-of-thought distillation of math problems.

    compass-data pdfs  --manifest sources.yaml --pdf-dir pdfs/
    compass-data synth ocr|vqa|finqa --pdf-dir pdfs/ --teacher http://127.0.0.1:8000/v1 --out data/p1/
    compass-data distill --sources math_sources.yaml --n 150000 --seed 0 --teacher … --out data/p2/
    compass-data inspect data/p1/vqa/

A dataset folder (`<out>/ocr/`, `<out>/vqa/`, `<out>/finqa/`, `<out>/distill/`) holds `run.json`
(the settings a resumed run must match), `shard-NNNNN.jsonl` (the trainer's record format, read by
`compass_train.records.load_records`), `images/` (pages, paths relative to the folder),
`rejects/shard-NNNNN.json` (what was dropped and why), and, once finished, `dataset_card.json` and
`README.md`. The teacher's answers are cached in `<out>/teacher_cache.sqlite`.
"""
