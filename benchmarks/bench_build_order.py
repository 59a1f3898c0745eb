"""HNSW recall@10 on real embeddings, graph built in write batches (as an index does) or all at once.

Encodes N generated zh/en passages (``bench_ingest_query.generate_passages``) and the
side-by-side benchmark's queries with the default encoder, then builds two graphs from the same
vectors with the index defaults (cosine, M 16, ef_construction 200): textsearch's ``AnnIndex``
fed in batches of ``--batch`` (growing as an index grows), and plain hnswlib given every vector
in one ``add_items``. Recall@10 against exact search counts a hit within 1e-4 of the exact 10th
best (ties between duplicate passages), at each ef. Writes JSON:

    python benchmarks/bench_build_order.py --passages 100000     # results/build_order-100000.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import hnswlib
import numpy as np

from textsearch.storage.ann import AnnIndex
from textsearch.models.encoder import SentenceTransformerEncoder

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_compare import make_queries
from bench_ingest_query import generate_passages

K, M, EF_CONSTRUCTION, TIE = 10, 16, 200, 1e-4


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("-n", "--passages", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--batch", type=int, default=1024, help="write batch of the batched build")
    parser.add_argument("--efs", default="100,200,400,800")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    docs = generate_passages(args.passages)
    queries = [q for q, _ in make_queries(docs, args.queries)]
    encoder = SentenceTransformerEncoder()
    started = time.perf_counter()
    vectors = encoder.encode_passages([d["text"] for d in docs])
    encode_seconds = time.perf_counter() - started
    query_vectors = encoder.encode_queries(queries)
    scores = query_vectors @ vectors.T
    kth = -np.partition(-scores, K - 1, axis=1)[:, K - 1]

    def recall(labels: np.ndarray) -> float:
        return float(np.mean([(scores[i, row] >= kth[i] - TIE).sum() / K for i, row in enumerate(labels)]))

    efs = [int(e) for e in args.efs.split(",")]
    batched = AnnIndex(vectors.shape[1], M=M, ef_construction=EF_CONSTRUCTION)
    for start in range(0, len(vectors), args.batch):
        batched.add(np.arange(start, min(start + args.batch, len(vectors))), vectors[start:start + args.batch])
    at_once = hnswlib.Index(space="cosine", dim=vectors.shape[1])
    at_once.init_index(max_elements=len(vectors), ef_construction=EF_CONSTRUCTION, M=M)
    at_once.add_items(vectors, np.arange(len(vectors)))
    result: dict[str, dict[str, float]] = {"batched": {}, "at_once": {}}
    for ef in efs:
        result["batched"][str(ef)] = recall(batched.search(query_vectors, K, ef=ef)[0])
        at_once.set_ef(ef)
        result["at_once"][str(ef)] = recall(at_once.knn_query(query_vectors, k=K)[0])
        print(f"ef {ef:4d}  recall@10 batched {result['batched'][str(ef)]:.4f}  at once {result['at_once'][str(ef)]:.4f}")
    out = args.out or Path(__file__).parent / "results" / f"build_order-{args.passages}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"passages": len(docs), "queries": len(queries), "batch": args.batch,
                               "M": M, "ef_construction": EF_CONSTRUCTION, "encode_seconds": encode_seconds,
                               "command": " ".join(["python", *sys.argv]), "recall_at_10": result}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
