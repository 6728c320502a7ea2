"""Training data from public documents: synthetic page data from government PDFs with a teacher
VLM (OCR, two-turn VQA, financial QA) and chain-of-thought distillation of math problems."""
