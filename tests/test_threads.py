"""One ``Index`` shared by many threads, as a web app's thread pool shares it: readers in
parallel (each thread its own SQLite connection and snapshot), a writer thread upserting and
deleting meanwhile, and every answer whole."""

from __future__ import annotations

import threading
from pathlib import Path

from textsearch import Index
from textsearch.testing import KeywordEncoder

WORDS = ["apple", "banana", "cat", "dog", "fish", "house", "rain", "sun", "tree", "water"]


def _docs(generation: int) -> list[dict[str, str]]:
    """Ten documents, one per word; ``gen`` says which generation wrote them."""
    return [{"id": w, "text": f"{w} {w} sun", "gen": str(generation)} for w in WORDS]


def test_six_threads_share_one_index_with_a_writer(tmp_path: Path) -> None:
    with Index.create(tmp_path / "idx", encoder=KeywordEncoder()) as index:
        index.add(_docs(0))
        errors: list[BaseException] = []
        answers: list[tuple[str, list[str]]] = []
        lock = threading.Lock()
        stop = threading.Event()
        modes = ["dense", "keyword", "hybrid"]

        def reader(n: int) -> None:
            try:
                for i in range(150):
                    word, mode = WORDS[(n + i) % len(WORDS)], modes[i % 3]
                    hits = index.search(word, k=3, mode=mode, include_low_confidence=True)
                    with lock:
                        answers.append((word, [h.doc_id for h in hits]))
            except BaseException as exc:  # noqa: BLE001 - collected, asserted below
                errors.append(exc)

        def writer() -> None:
            try:
                generation = 1
                while not stop.is_set():
                    index.add(_docs(generation))  # every document changes: replaced in one transaction
                    index.delete(["extra"])
                    index.add([{"id": "extra", "text": "extra words"}])
                    generation += 1
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)

        threads = [threading.Thread(target=reader, args=(n,)) for n in range(6)]
        writing = threading.Thread(target=writer)
        writing.start()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        stop.set()
        writing.join()

        assert errors == []
        assert len(answers) == 6 * 150
        # a document with the query's word is always there, and first, whatever the writer did
        wrong = [(w, ids) for w, ids in answers if not ids or ids[0] != w]
        assert wrong == []
        assert index.count() == len(WORDS) + 1


def test_threads_that_finish_give_their_connections_back(tmp_path: Path) -> None:
    with Index.create(tmp_path / "idx", encoder=KeywordEncoder()) as index:
        index.add(_docs(0))
        for _ in range(5):
            t = threading.Thread(target=lambda: index.search("cat", k=1, mode="keyword"))
            t.start()
            t.join()
        index.search("cat", k=1, mode="keyword")  # a new connection prunes the finished threads'
        t = threading.Thread(target=lambda: index.search("dog", k=1, mode="keyword"))
        t.start()
        t.join()
        alive = [thread for thread, _ in index.store._connections.values() if thread.is_alive()]
        assert len(index.store._connections) <= 2 and threading.main_thread() in alive


def test_asearch_answers_like_search_without_blocking_the_loop(tmp_path: Path) -> None:
    import asyncio

    with Index.create(tmp_path / "idx", encoder=KeywordEncoder()) as index:
        index.add(_docs(0))

        async def main() -> list[list[str]]:
            found = await asyncio.gather(*(index.asearch(w, k=2, mode="keyword") for w in WORDS))
            return [[h.doc_id for h in hits] for hits in found]

        assert asyncio.run(main()) == [[h.doc_id for h in index.search(w, k=2, mode="keyword")] for w in WORDS]
