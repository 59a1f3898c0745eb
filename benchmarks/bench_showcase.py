"""The card's example, as a check (never a set a model is chosen on): "可爱的宝宝" on the demo corpus
and on a five-file corpus, where "宝宝的可爱玩具坏了" (a broken toy) shares the query's words and the
paraphrases ("惹人喜欢的孩子", the demo's family documents) share few. Writes each model's first hits
with their scores (benchmarks/results/showcase.json), and the query's cosine with ``VARIANTS``: the
paraphrase with one word at a time put back, which says which word a model misses.

    python benchmarks/bench_showcase.py --models multilingual-e5-small zh-en-general zh-en-wordshare

With ``--rerank-model``, each model's candidates are reranked too (``--rerank-weight``: the blend).

With ``--interpolate``, each LoRA adapter named in ``--models`` is measured at these shares of its
trained change instead (W = W_base + α·ΔW, what ``textsearch train --interpolate`` writes; α 0 is
the base model), to see whether any point between the base model and the adapter passes. Each
copy is merged into the model cache like any adapter, and stays there (about 0.5 GB each):

    python benchmarks/bench_showcase.py --models zh-en-general zh-en-wordshare \
        --interpolate 0 0.1 0.25 0.5 0.75 1 --out benchmarks/results/showcase-interpolated.json
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

from textsearch.index import Index
from textsearch.models.adapters import keep_share
from textsearch.models.encoder import SentenceTransformerEncoder
from textsearch.models.registry import DEFAULT_BASE_MODEL, DEFAULT_MODEL, SHIPPED_ADAPTERS

ROOT = Path(__file__).resolve().parent.parent
QUERY = "可爱的宝宝"
NEAR_MISS = {"demo": "family/toys.txt", "five": "toy.txt"}
FIVE = {"kid.txt": "惹人喜欢的孩子", "toy.txt": "宝宝的可爱玩具坏了", "stocks.txt": "股市今天大跌，投资者很担心。",
        "noodles.txt": "这家餐厅的牛肉面很好吃。", "laptop.txt": "我的电脑坏了，需要修理。"}

VARIANTS = {"paraphrase": "惹人喜欢的孩子", "noun swapped only": "可爱的孩子", "adjective swapped only": "惹人喜欢的宝宝",
            "adjective swapped for the dictionary's synonym": "讨人喜欢的宝宝", "near miss": "宝宝的可爱玩具坏了"}


def first_hits(index: Index, k: int, rerank: dict[str, object]) -> list[dict[str, object]]:
    return [{"id": h.doc_id, "score": round(h.score, 4), "text": h.text[:40]}
            for h in index.search(QUERY, k=k, include_low_confidence=True, **rerank)]


def variants(encoder: SentenceTransformerEncoder) -> dict[str, float]:
    """The query's cosine with each of ``VARIANTS`` (on the five files, a document's score)."""
    cosines = encoder.encode_passages(list(VARIANTS.values())) @ encoder.encode_queries([QUERY])[0]
    return {text: round(float(c), 4) for text, c in zip(VARIANTS.values(), cosines)}


def measure(model: str, rerank: dict[str, object] | None = None) -> dict[str, object]:
    encoder = SentenceTransformerEncoder(model)
    out: dict[str, object] = {"variants": variants(encoder)}
    with tempfile.TemporaryDirectory() as tmp:
        five = Path(tmp) / "five"
        five.mkdir()
        for name, text in FIVE.items():
            (five / name).write_text(text, encoding="utf-8")
        for corpus, folder, k in (("demo", ROOT / "corpora" / "demo", 6), ("five", five, 3)):
            with Index.create(Path(tmp) / f"{corpus}-index", encoder=encoder) as index:
                index.index_folder(folder)
                hits = first_hits(index, k, rerank or {})
            out[corpus] = {"hits": hits, "near_miss_first": hits[0]["id"] == NEAR_MISS[corpus]}
    return out


def interpolated(model: str, alpha: float, tmp: Path) -> str:
    """A copy of the adapter ``model`` (a shipped name or a folder) keeping ``alpha`` of its
    trained change: ``lora_alpha`` set to α × the value it was trained with."""
    if alpha == 0:
        return DEFAULT_BASE_MODEL
    folder = SHIPPED_ADAPTERS.get(model, Path(model))
    marker = json.loads((folder / "textsearch_model.json").read_text(encoding="utf-8"))
    if marker.get("kind") != "lora" or marker.get("base") != DEFAULT_BASE_MODEL:
        raise SystemExit(f"--interpolate takes LoRA adapters over {DEFAULT_BASE_MODEL}: {model} is not one")
    copy = tmp / f"{folder.name}-{alpha:g}"
    shutil.copytree(folder, copy)
    keep_share(copy, alpha, marker["config"]["lora_alpha"])  # the alpha before --interpolate scaled it
    return str(copy)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["multilingual-e5-small", DEFAULT_MODEL])
    parser.add_argument("--rerank-model", default=None, help="rerank each model's candidates with this reranker")
    parser.add_argument("--rerank-weight", type=float, default=None, help="default: the reranker's calibrated one")
    parser.add_argument("--interpolate", nargs="+", type=float, default=None, metavar="ALPHA",
                        help="measure each adapter at these shares of its change (0: the base model)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "showcase.json")
    args = parser.parse_args(argv)
    if args.interpolate:
        return sweep(args.models, args.interpolate, args.out)
    rerank = ({"rerank": True, "rerank_model": args.rerank_model, "rerank_weight": args.rerank_weight}
              if args.rerank_model else {})
    result = {"query": QUERY, "models": {}, **({"rerank": rerank} if rerank else {})}
    for model in args.models:
        result["models"][model] = got = measure(model, rerank)
        for corpus in ("demo", "five"):
            hits = ", ".join(f"{h['id']} {h['score']:.3f}" for h in got[corpus]["hits"][:3])
            print(f"{model:<24} {corpus}: {hits}", flush=True)
        print(f"{model:<24} " + ", ".join(f"{t} {c:.3f}" for t, c in got["variants"].items()), flush=True)
    args.out.write_text(json.dumps(result, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return 0


def sweep(models: list[str], alphas: list[float], out: Path) -> int:
    """``--interpolate``: the cosines of ``VARIANTS`` and both corpora's first hits, per model and α."""
    result: dict[str, object] = {"query": QUERY, "alphas": alphas, "models": {}}
    with tempfile.TemporaryDirectory(prefix="textsearch-showcase-") as tmp:
        for model in models:
            result["models"][model] = runs = {}
            for alpha in alphas:
                runs[f"{alpha:g}"] = got = measure(interpolated(model, alpha, Path(tmp)))
                cos = got["variants"]
                print(f"{model:<18} α {alpha:<5g} paraphrase {cos[VARIANTS['paraphrase']]:.3f} near miss "
                      f"{cos[VARIANTS['near miss']]:.3f}; near miss first: demo {got['demo']['near_miss_first']}, "
                      f"five {got['five']['near_miss_first']}", flush=True)
    out.write_text(json.dumps(result, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
