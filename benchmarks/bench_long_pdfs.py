"""Long documents as PDFs: finding one fact with and without sentence units, and what each costs.

The held-out long-document splits of docs/quality.md (``longdoc_zh``: 60 notes of 80 everyday
sentences; ``news_fact``: 60 runs of 25 news paragraphs; 150 queries each) are printed to PDF
(reportlab, the WenQuanYi font, lines of 34 characters broken inside sentences, 40 lines a page),
so every fact goes through PDF extraction, line joining and page numbers as a user's would. Both
splits' 120 PDFs are indexed as one folder by ``Index.index_folder``, once with today's default
(64-token passages plus a unit per sentence, ``IndexConfig.sentences``) and once with passages
alone, and each query is searched through ``Index.search`` (k=10, warm, one query at a time).

Reported per setting: MRR@10 and Recall@1/10 of the right file; for news_fact, where the query is
a sentence of the document, whether the first hit's page holds that sentence and whether the text
shown marks it (``Hit.match``); units stored, index size on disk, indexing time and search latency
(p50 and p95 in milliseconds). Writes benchmarks/results/long-pdfs.json. Run it alone:

    flock /tmp/textsearch-cpu.lock .venv/bin/python benchmarks/bench_long_pdfs.py
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
HELDOUT = ROOT / "corpora" / "heldout" / "real"
FONT = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")
OUT = ROOT / "benchmarks" / "results" / "long-pdfs.json"
SPLITS = ("longdoc_zh", "news_fact")
LINE_WIDTH = 34  # a CJK character counts 1, any other 0.5: about the width of an A4 line at 11 pt
LINES_PER_PAGE = 40


def _lines(text: str) -> list[str]:
    """The printed lines of one paragraph: broken at the width, inside sentences and words alike."""
    lines, line, width = [], "", 0.0
    for ch in text:
        w = 1.0 if ord(ch) > 0x2E80 else 0.5
        if width + w > LINE_WIDTH:
            lines.append(line)
            line, width = "", 0.0
        line += ch
        width += w
    return lines + [line] if line else lines


def make_pdf(path: Path, text: str) -> list[str]:
    """Print ``text`` to ``path``; return each page's text (its lines joined) to judge pages by."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont
    from reportlab.pdfgen import canvas

    if "wqy" not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(TTFont("wqy", str(FONT), subfontIndex=0))
    lines = [line for paragraph in text.split("\n") for line in _lines(paragraph)]
    pages = [lines[i:i + LINES_PER_PAGE] for i in range(0, len(lines), LINES_PER_PAGE)]
    pdf = canvas.Canvas(str(path), pagesize=A4, invariant=1)
    for page in pages:
        out = pdf.beginText(50, 790)
        out.setFont("wqy", 11)
        for line in page:
            out.textLine(line)
        pdf.drawText(out)
        pdf.showPage()
    pdf.save()
    return ["".join(page) for page in pages]


def _queries(split: str) -> list[dict[str, Any]]:
    path = HELDOUT / f"{split}_queries.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _folder_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def measure(folder: Path, pages: dict[str, list[str]], queries: dict[str, list[dict[str, Any]]],
            sentences: bool, encoder: Any, tmp: Path) -> dict[str, Any]:
    from textsearch.index import Index

    where = tmp / f"index-{'sentences' if sentences else 'passages'}"
    with Index.create(where, encoder=encoder, sentences=sentences) as index:
        started = time.perf_counter()
        index.index_folder(folder)
        built = time.perf_counter() - started
        documents, units = index.backend.counts()
        index.search("warm", k=10)
        result: dict[str, Any] = {"documents": documents, "units": units, "index_s": round(built, 1),
                                  "index_megabytes": round(_folder_size(where) / 1e6, 2), "splits": {}}
        latencies = []
        for split, items in queries.items():
            rr, r1, r10, page_right, marked = [], [], [], [], []
            for item in items:
                started = time.perf_counter()
                hits = index.search(item["query"], k=10, include_low_confidence=True)
                latencies.append(time.perf_counter() - started)
                want = item["relevant"][0].split("#", 1)[1] + ".pdf"
                names = [Path(h.doc_id).name for h in hits]
                rank = names.index(want) + 1 if want in names else 0
                rr.append(1.0 / rank if rank else 0.0)
                r1.append(rank == 1)
                r10.append(rank > 0)
                if split == "news_fact":  # the query is a sentence of the document
                    first = hits[0] if hits and rank == 1 else None
                    page = (first.location or {}).get("page") if first else None
                    sentence = item["query"]
                    page_right.append(bool(page) and sentence in pages[want][page - 1])
                    shown = first.text[first.match[0]:first.match[1]] if first and first.match else ""
                    marked.append(bool(shown) and (shown in sentence or sentence in shown))
            row = {"queries": len(items), "mrr@10": round(float(np.mean(rr)), 3),
                   "recall@1": round(float(np.mean(r1)), 3), "recall@10": round(float(np.mean(r10)), 3)}
            if page_right:
                row["page_right@1"] = round(float(np.mean(page_right)), 3)
                row["sentence_marked@1"] = round(float(np.mean(marked)), 3)
            result["splits"][split] = row
        ms = np.asarray(latencies) * 1000
        result["search_ms_p50"] = round(float(np.percentile(ms, 50)), 1)
        result["search_ms_p95"] = round(float(np.percentile(ms, 95)), 1)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()

    from textsearch.models.encoder import SentenceTransformerEncoder

    queries = {split: _queries(split) for split in SPLITS}
    with tempfile.TemporaryDirectory(prefix="textsearch-long-pdfs-") as tmp_name:
        tmp = Path(tmp_name)
        folder = tmp / "pdfs"
        folder.mkdir()
        pages: dict[str, list[str]] = {}
        for split in SPLITS:
            for line in (HELDOUT / "docs" / f"{split}.jsonl").read_text(encoding="utf-8").splitlines():
                doc = json.loads(line)
                pages[doc["id"] + ".pdf"] = make_pdf(folder / f"{doc['id']}.pdf", doc["text"])
        encoder = SentenceTransformerEncoder()
        settings = {name: measure(folder, pages, queries, sentences, encoder, tmp)
                    for name, sentences in (("passages", False), ("passages+sentences", True))}
    counts = [len(p) for p in pages.values()]
    result = {
        "command": "flock /tmp/textsearch-cpu.lock .venv/bin/python benchmarks/bench_long_pdfs.py",
        "model": encoder.name, "runtime": getattr(encoder, "runtime", ""),
        "machine": {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count()},
        "pdfs": len(pages), "pages": sum(counts), "pages_per_pdf_max": max(counts),
        "settings": settings,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    json.dump(result, sys.stdout, indent=1, ensure_ascii=False)
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
