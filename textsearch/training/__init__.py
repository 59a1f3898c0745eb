"""Training and evaluation: pair files and where the data comes from, the LoRA trainers of the
bi-encoder and the cross-encoder, retrieval metrics and calibration, the held-out quality report.
Built on the facade (``index``) and every stage below it; only the interfaces import it."""
