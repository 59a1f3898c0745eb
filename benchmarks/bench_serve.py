"""`textsearch serve` under load: N concurrent clients on loopback for a bounded time, against the
demo index with the real model — queries/s, latency p50/p95/p99, errors (must be 0), the server's
peak RSS; the same while a writer upserts documents; and the in-process API with as many threads,
in the same run. Also the Python API's throughput with 1, 2, 4 and 8 threads sharing one Index.

    python benchmarks/bench_serve.py --seconds 30 --clients 8 32

With ``--rerank-rounds N`` it measures only what reranking costs in a warm server instead: one
client sends the demo questions one after another, N rounds, recall only and reranking 10 and 20
candidates (``benchmarks/results/serve-rerank.json``).

    python benchmarks/bench_serve.py --rerank-rounds 3
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
QUERIES = [json.loads(line)["query"] for line in (ROOT / "corpora" / "demo_queries.jsonl").read_text(
    encoding="utf-8").splitlines() if line.strip()]


def _pct(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000, 2)


def _summary(latencies: list[float], errors: int, seconds: float) -> dict[str, Any]:
    return {"queries": len(latencies), "queries_per_s": round(len(latencies) / seconds, 1),
            "p50_ms": _pct(latencies, 50), "p95_ms": _pct(latencies, 95), "p99_ms": _pct(latencies, 99),
            "errors": errors}


def _run(threads: list[threading.Thread]) -> float:
    """Start the threads, wait for them all; the seconds it took."""
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - started


def http_load(port: int, clients: int, seconds: float, writer: bool) -> dict[str, Any]:
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop = time.perf_counter() + seconds

    def client(n: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        i = n
        while time.perf_counter() < stop:
            body = json.dumps({"query": QUERIES[i % len(QUERIES)], "k": 10}).encode("utf-8")
            started = time.perf_counter()
            try:
                conn.request("POST", "/indexes/demo/search", body, {"Content-Type": "application/json"})
                response = conn.getresponse()
                response.read()
                ok = response.status == 200
            except OSError:
                ok = False
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            with lock:
                if ok:
                    latencies.append(time.perf_counter() - started)
                else:
                    errors[0] += 1
            i += clients

    def upserts() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        n = 0
        while time.perf_counter() < stop:
            docs = [{"id": f"load-{n}-{j}", "text": f"压力测试文档 {n} {j}：服务器在读写并发时的表现。"} for j in range(20)]
            conn.request("PUT", "/indexes/demo/documents", json.dumps(docs).encode("utf-8"),
                         {"Content-Type": "application/json"})
            response = conn.getresponse()
            response.read()
            if response.status != 200:
                with lock:
                    errors[0] += 1
            n += 1
            time.sleep(0.2)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    if writer:
        threads.append(threading.Thread(target=upserts))
    return _summary(latencies, errors[0], _run(threads))


def sequential(port: int, rounds: int, params: dict[str, Any]) -> dict[str, Any]:
    """One client, the demo questions one after another, ``rounds`` times, with ``params``."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    latencies: list[float] = []
    errors = 0
    started = time.perf_counter()
    for _ in range(rounds):
        for query in QUERIES:
            body = json.dumps({"query": query, "k": 10, **params}).encode("utf-8")
            t = time.perf_counter()
            conn.request("POST", "/indexes/demo/search", body, {"Content-Type": "application/json"})
            response = conn.getresponse()
            response.read()
            if response.status == 200:
                latencies.append(time.perf_counter() - t)
            else:
                errors += 1
    return _summary(latencies, errors, time.perf_counter() - started)


RERANK_RUNS = {"recall only": {}, "rerank 10 candidates": {"rerank": True, "candidates": 10},
               "rerank 20 candidates": {"rerank": True, "candidates": 20}}


def api_load(index: Any, threads: int, seconds: float) -> dict[str, Any]:
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop = time.perf_counter() + seconds

    def worker(n: int) -> None:
        i = n
        while time.perf_counter() < stop:
            started = time.perf_counter()
            try:
                index.search(QUERIES[i % len(QUERIES)], k=10)
                with lock:
                    latencies.append(time.perf_counter() - started)
            except Exception:  # noqa: BLE001 - counted
                with lock:
                    errors[0] += 1
            i += threads

    pool = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    return _summary(latencies, errors[0], _run(pool))


def start_server(env: dict[str, str], window: float, warm: dict[str, Any] | None = None,
                 ) -> tuple[int, subprocess.Popen[bytes]]:
    """``textsearch serve`` on a free loopback port, once it has answered a search (with ``warm``)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "textsearch", "serve", "--port", str(port),
                               "--batch-window-ms", str(window)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(600):
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            conn.request("POST", "/indexes/demo/search", json.dumps({"query": "warm up", **(warm or {})}),
                         {"Content-Type": "application/json"})
            if conn.getresponse().status == 200:
                break
        except OSError:
            time.sleep(0.2)
    return port, server


def rerank_costs(env: dict[str, str], rounds: int) -> dict[str, Any]:
    """``RERANK_RUNS`` in one warm server, each after a warm-up search of its own kind."""
    port, server = start_server(env, 0.0, warm={"rerank": True})
    try:
        out = {}
        for name, params in RERANK_RUNS.items():
            out[name] = sequential(port, rounds, params)
            print(f"{name}: {out[name]}", flush=True)
        out["server_peak_rss_mb"] = peak_rss_mb(server.pid)
        return out
    finally:
        server.terminate()
        server.wait(30)


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--clients", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--batch-window-ms", type=float, nargs="+", default=[0.0, 2.0],
                        help="server runs to compare: concurrent searches sharing one encoder call")
    parser.add_argument("--rerank-rounds", type=int, default=0,
                        help="measure only what reranking costs a warm server, over this many rounds")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    results = ROOT / "benchmarks" / "results"
    args.out = args.out or results / ("serve-rerank.json" if args.rerank_rounds else "serve.json")

    work = Path(tempfile.mkdtemp(prefix="textsearch-serve-"))
    env = {**os.environ, "TEXTSEARCH_INDEXES": str(work / "indexes")}
    result: dict[str, Any] = {"seconds": args.seconds, "cpus": os.cpu_count(), "machine": platform.machine()}
    try:
        subprocess.run([sys.executable, "-m", "textsearch", "index", str(ROOT / "corpora" / "demo"), "--quiet"],
                       env=env, check=True)
        if args.rerank_rounds:
            result = {"rounds": args.rerank_rounds, "queries": len(QUERIES), "cpus": os.cpu_count(),
                      "machine": platform.machine(), "runs": rerank_costs(env, args.rerank_rounds)}
            args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
            print(f"wrote {args.out}")
            return
        from textsearch import Index

        with Index.open(work / "indexes" / "demo") as index:
            index.search("warm up")
            result["api_threads"] = {}
            for n in args.threads:
                result["api_threads"][n] = api_load(index, n, args.seconds)
                print(f"API, {n} threads: {result['api_threads'][n]}", flush=True)
        result["http"] = {}
        for window in args.batch_window_ms:
            port, server = start_server(env, window)
            try:
                for clients in args.clients:
                    for writer in (False, True):
                        name = f"{clients} clients" + (" + a writer" if writer else "") + f", batch window {window:g} ms"
                        result["http"][name] = http_load(port, clients, args.seconds, writer)
                        print(f"HTTP, {name}: {result['http'][name]}", flush=True)
                result[f"server_peak_rss_mb, batch window {window:g} ms"] = peak_rss_mb(server.pid)
            finally:
                server.terminate()
                server.wait(30)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
