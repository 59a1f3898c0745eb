"""Indexing a folder of real-sized PDFs: pages/s and passages/s end to end, where the time goes
(text extraction, splitting into passages, embedding), and re-indexing the unchanged folder
(no PDF is opened, the model is not loaded). A document of several passages also gets a unit per
sentence (``IndexConfig.sentences``): "units" counts both, as they are embedded.

The PDFs are generated (reportlab, the WenQuanYi font): --files documents of --pages pages, each
page about 600 characters of Chinese and English sentences from textsearch/data/background.txt.
Extraction and splitting are timed alone over every file; embedding is timed on a sample of the
passages (its rate); the end-to-end time is one `Index.index_folder`, where embedding overlaps
reading. Writes benchmarks/results/documents.json.

    python benchmarks/bench_documents.py --files 200 --pages 20
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FONT = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")
OUT = ROOT / "benchmarks" / "results" / "documents.json"


def make_pdfs(folder: Path, files: int, pages: int, seed: int = 0) -> None:
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont
    from reportlab.pdfgen import canvas

    pdfmetrics.registerFont(TTFont("wqy", str(FONT), subfontIndex=0))
    lines = [s.strip() for s in (ROOT / "textsearch/data/background.txt").read_text(encoding="utf-8").splitlines()
             if s.strip()]
    rng = random.Random(seed)
    for n in range(files):
        pdf = canvas.Canvas(str(folder / f"report-{n:03d}.pdf"), pagesize=A4, invariant=1)
        for _ in range(pages):
            text = pdf.beginText(50, 790)
            text.setFont("wqy", 11)
            written = 0
            while written < 600:
                sentence = rng.choice(lines)
                for start in range(0, len(sentence), 40):  # lines break inside sentences, as in print
                    text.textLine(sentence[start:start + 40])
                written += len(sentence)
            pdf.drawText(text)
            pdf.showPage()
        pdf.save()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--pages", type=int, default=20)
    parser.add_argument("--sample", type=int, default=2000, help="passages embedded alone to time the encoder")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()

    from textsearch.config import OVERLAP_TOKENS, PASSAGE_TOKENS
    from textsearch.documents.corpus import Corpus
    from textsearch.documents.split import split_many, with_sentences
    from textsearch.index import Index
    from textsearch.models.encoder import SentenceTransformerEncoder

    with tempfile.TemporaryDirectory(prefix="textsearch-documents-") as tmp:
        folder = Path(tmp) / "pdfs"
        folder.mkdir()
        make_pdfs(folder, args.files, args.pages)
        size = sum(p.stat().st_size for p in folder.iterdir())

        started = time.perf_counter()
        docs = list(Corpus(folder, max_file_bytes=50_000_000).documents())
        extraction = time.perf_counter() - started
        pages = sum(1 for d in docs for _, where in d.locations if "page" in where)
        chars = sum(len(d.text) for d in docs)

        encoder = SentenceTransformerEncoder()
        started = time.perf_counter()
        cut = split_many([d.text for d in docs], encoder.count_tokens, PASSAGE_TOKENS, OVERLAP_TOKENS)
        splitting = time.perf_counter() - started
        passages = [p.text for ps in cut for p in ps]
        units = [u.text for d, ps in zip(docs, cut) for u in with_sentences(d.text, ps)]
        sample = random.Random(0).sample(units, min(args.sample, len(units)))
        encoder.encode_passages(sample[:64])  # warm
        started = time.perf_counter()
        encoder.encode_passages(sample)
        rate = len(sample) / (time.perf_counter() - started)

        with Index.create(Path(tmp) / "index", encoder=encoder) as index:
            started = time.perf_counter()
            summary = index.index_folder(folder)
            total = time.perf_counter() - started
            started = time.perf_counter()
            again = index.index_folder(folder)
            unchanged = time.perf_counter() - started

    result = {
        "files": args.files, "pages": pages, "pdf_megabytes": round(size / 1e6, 1), "characters": chars,
        "passages": len(passages), "units": len(units), "cpus": os.cpu_count(), "machine": platform.machine(),
        "python": platform.python_version(),
        "extraction_s": round(extraction, 2), "extraction_pages_per_s": round(pages / extraction, 1),
        "splitting_s": round(splitting, 2), "embedding_units_per_s": round(rate, 1),
        "embedding_s_estimated": round(len(units) / rate, 1),
        "index_s": round(total, 1), "index_pages_per_s": round(pages / total, 1),
        "index_units_embedded": summary.passages, "index_units_per_s": round(summary.passages / total, 1),
        "documents_added": summary.added,
        "reindex_unchanged_s": round(unchanged, 3), "reindex_unchanged_documents": again.unchanged,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    json.dump(result, sys.stdout, indent=2)
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
