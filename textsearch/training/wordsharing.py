"""Word-sharing pairs from real text: sentences that share most of their words yet mean different
things (negatives), and restatements that share words and mean the same (positives).

A model that learns "shared words = wrong answer" from hand-written near misses fails where a user
looks first; one that never sees near misses ranks "宝宝的可爱玩具坏了" above "惹人喜欢的孩子". Both
kinds are mined here from Tatoeba's translation clusters, one split of clusters at a time, so the
dev and held-out word-sharing splits come from clusters that training never saw.

- **Chinese negatives**: two Chinese sentences of different clusters that share at least
  ``ZH_SHARED`` of their characters (multiset overlap over the longer one), and whose English
  translations say something else: word overlap (Jaccard) under ``PIVOT_WORDS`` and cosine under
  ``PIVOT_COSINE`` with the base model, for every pair of their translations.
- **English negatives**, the same way round: English sentences sharing at least ``EN_SHARED`` of
  their words, checked through their Chinese translations (character overlap under
  ``PIVOT_CHARS``, cosine under ``PIVOT_COSINE``).
- **Restatements that share words**: two sentences of one cluster in one language (two
  translations of the same sentence) that share as much as the negatives do: sharing words is
  right there, so a model cannot learn overlap itself as a signal.
- **Restatement controls** (``controls``): such a restatement as the positive against the sentence
  of another cluster that the base model puts closest to the anchor while sharing little of its
  words (under ``CONTROL_SHARED``), its translations saying something else (the same pivot check):
  the mirror of a word-sharing triple, where the answer that shares words is the right one.

- **Held whole** (``mine_containing``): a short sentence inside a longer one of another cluster
  that holds its rarer character bigrams (or word pairs) and says something else ("她很漂亮。" in
  "是呀，这个很漂亮。多少钱？"): the card's "可爱的宝宝" against "宝宝的可爱玩具坏了" is this shape.

- **Swapped for synonyms** (``swap_triples``): a Chinese sentence with every word that has a
  synonym replaced by it (a cnsyn group, a CC-CEDICT gloss and a part of speech in common:
  ``synonym_pairs``) is the positive, and the sentence's near miss the negative where it keeps more
  of the sentence's characters than the swap does: "惹人喜欢的孩子" against "宝宝的可爱玩具坏了" is this
  shape (the card's own words are never swapped).

A triple is (anchor, positive, negative): the anchor's restatement in its own language when its
cluster has one (else its translation) is the positive, the word-sharing sentence the negative.
``docs/training.md`` gives the false-negative rate measured by reading a sample.
"""

from __future__ import annotations

import math
import random
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any, Protocol

import numpy as np

ZH_SHARED = 0.6  # share of the longer sentence's characters the other one has too
EN_SHARED = 0.5  # word Jaccard of two English sentences
PIVOT_WORDS = 0.4  # their translations' word Jaccard stays under this (English pivot)
PIVOT_CHARS = 0.5  # their translations' character overlap stays under this (Chinese pivot)
PIVOT_COSINE = 0.90  # and their cosine with the base model stays under this
CONTROL_SHARED = 0.3  # a control's negative shares less than this with its anchor
CONTROL_CANDIDATES = 20  # the anchor's nearest sentences (base model) a control's negative is taken from
MIN_ZH_CHARS = 5
CONTAIN_LONGER = (1.5, 3.0)  # a sentence that holds another is this many times its length
CONTAIN_SHARED = 0.6  # and has this share of its bigrams or word pairs, weighted by rarity (idf)
CONTAIN_COSINE = 0.85  # its translations' cosine with the held one's stays under this
MIN_CONTAIN_ZH, MAX_CONTAIN_ZH = 4, 12  # the held sentence's characters
MIN_CONTAIN_EN, MAX_CONTAIN_EN = 3, 8  # the held sentence's words
MIN_EN_WORDS = 4
MAX_POSTINGS = 3000  # a gram in more sentences than this does not propose candidates
MIN_SYNONYM_USES = 3  # a word and its synonym are each this often in the clusters' segmented sentences
SYNONYM_TAGS = frozenset({"n", "v", "a", "vn", "an"})  # jieba's parts of speech a synonym swap keeps
CARD_WORDS = frozenset({"可爱", "宝宝", "惹人喜欢", "孩子"})  # the card's example is a check: never swapped

_HAN_WORD = re.compile(r"[\u4e00-\u9fff]{2,}")
_LOOSE_GLOSS = re.compile(r"variant of|^see |surname|used in|abbr\.|^old |^CL:|^pr\.|erhua")
_ZH_CHAR = re.compile(r"[\u4e00-\u9fff0-9A-Za-z]")
_EN_WORD = re.compile(r"[a-z0-9]+")
_CONTRACTIONS = (("n't", " not"), ("'m", " am"), ("'re", " are"), ("'s", " is"), ("'ll", " will"),
                 ("'ve", " have"), ("'d", " would"))


class _Embeds(Protocol):  # an ``encoder.Encoder``, named structurally
    def encode_queries(self, texts: Sequence[str]) -> np.ndarray: ...


def zh_chars(text: str) -> list[str]:
    return _ZH_CHAR.findall(text)


def en_words(text: str) -> list[str]:
    text = text.lower().replace("’", "'")
    for short, long in _CONTRACTIONS:
        text = text.replace(short, long)
    return _EN_WORD.findall(text)


def _chars_shared(a: str, b: str) -> tuple[int, int, int]:
    """The characters the two share (as multisets), and each one's count."""
    ca, cb = Counter(zh_chars(a)), Counter(zh_chars(b))
    return sum((ca & cb).values()), sum(ca.values()), sum(cb.values())


def zh_overlap(a: str, b: str) -> float:
    """Characters the two share (as multisets) over the longer one's count."""
    shared, n_a, n_b = _chars_shared(a, b)
    return shared / max(n_a, n_b) if n_a or n_b else 0.0


def _kept(a: str, b: str) -> float:
    """The share of ``a``'s characters (as a multiset) that ``b`` has too."""
    shared, n_a, _ = _chars_shared(a, b)
    return shared / n_a if n_a else 0.0


def en_overlap(a: str, b: str) -> float:
    """Jaccard of the two word sets."""
    wa, wb = set(en_words(a)), set(en_words(b))
    return len(wa & wb) / len(wa | wb) if wa | wb else 0.0


@dataclass(frozen=True)
class _Measures:
    """How one language's sentences are compared: their overlap and the least a near miss or a
    restatement shares, and the same for their translations (the pivot) with its upper limit."""

    shared: Callable[[str, str], float]
    least: float
    pivot_shared: Callable[[str, str], float]
    pivot_limit: float


MEASURES = {"zh": _Measures(zh_overlap, ZH_SHARED, en_overlap, PIVOT_WORDS),
            "en": _Measures(en_overlap, EN_SHARED, zh_overlap, PIVOT_CHARS)}


def _grams(text: str, lang: str) -> set[str]:
    if lang == "zh":
        chars = zh_chars(text)
        return {a + b for a, b in pairwise(chars)}
    return set(en_words(text))


def candidate_pairs(texts: Sequence[str], lang: str, min_shared: int = 2) -> list[tuple[int, int]]:
    """Index pairs (i < j) sharing at least ``min_shared`` grams (character bigrams for Chinese,
    words for English), from a sparse product; grams in more than ``MAX_POSTINGS`` texts skipped."""
    from scipy import sparse

    vocab: dict[str, int] = {}
    rows, cols = [], []
    for i, text in enumerate(texts):
        for gram in _grams(text, lang):
            rows.append(i)
            cols.append(vocab.setdefault(gram, len(vocab)))
    m = sparse.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(len(texts), len(vocab)))
    df = np.asarray(m.sum(axis=0)).ravel()
    m = m[:, np.flatnonzero(df <= MAX_POSTINGS)]
    shared = sparse.triu(m @ m.T, k=1).tocoo()
    keep = shared.data >= min_shared
    return sorted(zip(shared.row[keep].tolist(), shared.col[keep].tolist()))


@dataclass
class Clusters:
    """One split's Tatoeba clusters: each sentence's cluster and its translations."""

    cluster: dict[str, str]  # sentence → cluster key (a sentence in two clusters keeps the first)
    members: dict[str, dict[str, set[str]]]  # cluster → {"zh": {...}, "en": {...}}
    translations: dict[str, set[str]]  # sentence → its translations

    @classmethod
    def of(cls, pairs: Iterable[tuple[str, str, str, str]], cluster_of: dict[str, str]) -> Clusters:
        cluster: dict[str, str] = {}
        members: dict[str, dict[str, set[str]]] = defaultdict(lambda: {"zh": set(), "en": set()})
        translations: dict[str, set[str]] = defaultdict(set)
        for zid, zh, _, en in pairs:
            key = cluster_of[f"zh{zid}"]
            cluster.setdefault(zh, key)
            cluster.setdefault(en, key)
            members[key]["zh"].add(zh)
            members[key]["en"].add(en)
            translations[zh].add(en)
            translations[en].add(zh)
        return cls(cluster, dict(members), dict(translations))

    def sentences(self, lang: str) -> list[str]:
        return sorted({s for m in self.members.values() for s in m[lang]})

    def restatements(self, text: str, lang: str) -> list[str]:
        """Other sentences of ``text``'s cluster in its language, differing by more than punctuation."""
        own = _bare(text)
        return sorted(s for s in self.members[self.cluster[text]][lang] if _bare(s) != own)


def _bare(text: str) -> str:
    return re.sub(r"[\W_]+", "", text.lower())


def _translations_differ(clusters: Clusters, a: str, b: str, measures: _Measures) -> bool:
    """Every translation of ``a`` shares under the pivot's limit with every translation of ``b``."""
    return all(measures.pivot_shared(x, y) < measures.pivot_limit
               for x in clusters.translations[a] for y in clusters.translations[b])


def _pivot_cosines(encoder: _Embeds, pairs: list[tuple[str, str]]) -> np.ndarray:
    texts = sorted({t for pair in pairs for t in pair})
    if not texts:
        return np.zeros(0, np.float32)
    vectors = encoder.encode_queries(texts)
    row = {t: i for i, t in enumerate(texts)}
    return np.asarray([float(vectors[row[a]] @ vectors[row[b]]) for a, b in pairs], np.float32)


def mine_negatives(clusters: Clusters, lang: str, encoder: _Embeds) -> list[tuple[str, str]]:
    """Pairs of ``lang`` sentences of different clusters that share most of their words while
    their translations (the pivot) say something else; each pair once, sorted."""
    texts = [t for t in clusters.sentences(lang)
             if (len(zh_chars(t)) >= MIN_ZH_CHARS if lang == "zh" else len(en_words(t)) >= MIN_EN_WORDS)]
    measures = MEASURES[lang]
    found = []
    for i, j in candidate_pairs(texts, lang, min_shared=2):
        a, b = texts[i], texts[j]
        if clusters.cluster[a] == clusters.cluster[b] or _bare(a) == _bare(b):
            continue
        if measures.shared(a, b) >= measures.least and _translations_differ(clusters, a, b, measures):
            found.append((a, b))
    return _pivot_apart(clusters, found, encoder, PIVOT_COSINE)


def _pivot_apart(clusters: Clusters, found: list[tuple[str, str]], encoder: _Embeds,
                 limit: float) -> list[tuple[str, str]]:
    """The pairs of ``found`` whose every pair of translations (the pivot) has a cosine under ``limit``."""
    checks = [(x, y) for a, b in found for x in sorted(clusters.translations[a]) for y in sorted(clusters.translations[b])]
    cosines = iter(_pivot_cosines(encoder, checks).tolist())
    kept = []
    for a, b in found:
        n = len(clusters.translations[a]) * len(clusters.translations[b])
        if max(next(cosines) for _ in range(n)) < limit:
            kept.append((a, b))
    return kept


def contained(a: str, b: str, lang: str, weight: Callable[[tuple[str, str]], float]) -> bool:
    """``a`` held whole inside ``b``: ``b`` is ``CONTAIN_LONGER`` times as long as ``a`` (characters
    or words) and has ``CONTAIN_SHARED`` of ``a``'s character bigrams or word pairs, each counted by
    its ``weight`` (rarer pairs more: its content, not "这是我的" or "do you have")."""
    units_a, units_b = (zh_chars(a), zh_chars(b)) if lang == "zh" else (en_words(a), en_words(b))
    return _holds(len(units_a), set(pairwise(units_a)), len(units_b), set(pairwise(units_b)), weight)


def _holds(n_a: int, pairs_a: set[tuple[str, str]], n_b: int, pairs_b: set[tuple[str, str]],
           weight: Callable[[tuple[str, str]], float]) -> bool:
    """``contained`` on the two texts' lengths and sets of successive units."""
    if n_a < 2 or not CONTAIN_LONGER[0] * n_a <= n_b <= CONTAIN_LONGER[1] * n_a:
        return False
    return sum(weight(p) for p in pairs_a & pairs_b) >= CONTAIN_SHARED * sum(weight(p) for p in pairs_a)


def mine_containing(clusters: Clusters, lang: str, encoder: _Embeds) -> list[tuple[str, str]]:
    """(short sentence, longer sentence of another cluster that holds it whole, ``contained``) in
    ``lang``, the longer one's translations saying something else: under the pivot's overlap limit
    and a cosine under ``CONTAIN_COSINE`` (stricter than the near misses' ``PIVOT_COSINE``: a
    sentence that holds another may just say more, "I have no time" in "I have no time now")."""
    units = zh_chars if lang == "zh" else en_words
    least, most = (MIN_CONTAIN_ZH, MAX_CONTAIN_ZH) if lang == "zh" else (MIN_CONTAIN_EN, MAX_CONTAIN_EN)
    # each sentence's length and successive units, once (a sentence is in many candidate pairs)
    shape = {t: (len(u), set(pairwise(u))) for t in clusters.sentences(lang) if len(u := units(t)) >= least}
    texts = list(shape)
    measures = MEASURES[lang]
    df = Counter(p for _, pairs in shape.values() for p in pairs)
    idf = {p: math.log(len(texts) / n) for p, n in df.items()}
    found = []
    for i, j in candidate_pairs(texts, lang, min_shared=2):
        for a, b in ((texts[i], texts[j]), (texts[j], texts[i])):
            if (shape[a][0] <= most and clusters.cluster[a] != clusters.cluster[b]
                    and _holds(*shape[a], *shape[b], idf.__getitem__)
                    and _translations_differ(clusters, a, b, measures)):
                found.append((a, b))
    return sorted(_pivot_apart(clusters, found, encoder, CONTAIN_COSINE))


def restatement_pairs(clusters: Clusters, lang: str) -> list[tuple[str, str]]:
    """Two sentences of one cluster in ``lang`` that share as much as a mined negative does."""
    measures = MEASURES[lang]
    out = []
    for key in sorted(clusters.members):
        texts = sorted(clusters.members[key][lang])
        for i, a in enumerate(texts):
            for b in texts[i + 1:]:
                if _bare(a) != _bare(b) and measures.shared(a, b) >= measures.least:
                    out.append((a, b))
    return out


def controls(clusters: Clusters, pairs: list[tuple[str, str]], lang: str, encoder: _Embeds) -> list[dict[str, Any]]:
    """Restatement controls: for each restatement pair (``restatement_pairs``), both ways round,
    (anchor, its restatement, the nearest sentence of another cluster by the base model that shares
    under ``CONTROL_SHARED`` with the anchor and whose translations pass the pivot check); an anchor
    with no such sentence among its ``CONTROL_CANDIDATES`` nearest gives no row."""
    if not pairs:
        return []
    measures = MEASURES[lang]
    texts = clusters.sentences(lang)
    pivots = clusters.sentences("en" if lang == "zh" else "zh")
    vectors = encoder.encode_queries(texts)
    pivot_vectors = encoder.encode_queries(pivots)
    row_of = {t: i for i, t in enumerate(texts)}
    pivot_of = {t: i for i, t in enumerate(pivots)}
    directed = [(x, y) for a, b in pairs for x, y in ((a, b), (b, a))]
    anchors = vectors[[row_of[a] for a, _ in directed]]
    out = []
    for start in range(0, len(directed), 512):
        scores = anchors[start:start + 512] @ vectors.T
        nearest = np.argsort(-scores, axis=1, kind="stable")[:, :CONTROL_CANDIDATES]
        for (anchor, positive), order in zip(directed[start:start + 512], nearest):
            for j in order.tolist():
                other = texts[j]
                if clusters.cluster[other] == clusters.cluster[anchor] or measures.shared(anchor, other) >= CONTROL_SHARED:
                    continue
                if not _translations_differ(clusters, anchor, other, measures):
                    continue
                xs, ys = sorted(clusters.translations[anchor]), sorted(clusters.translations[other])
                cos = pivot_vectors[[pivot_of[x] for x in xs]] @ pivot_vectors[[pivot_of[y] for y in ys]].T
                if float(cos.max()) < PIVOT_COSINE:
                    out.append({"anchor": anchor, "positive": positive, "negative": [other], "lang": lang,
                                "source": "tatoeba-control"})
                    break
    return out


def positive_for(clusters: Clusters, text: str, lang: str, rng: random.Random) -> str | None:
    """A text that means what ``text`` means: a restatement in its language, else a translation."""
    options = clusters.restatements(text, lang) or sorted(clusters.translations.get(text, ()))
    return rng.choice(options) if options else None


def triples(clusters: Clusters, negatives: list[tuple[str, str]], lang: str, rng: random.Random,
            source: str = "tatoeba-wordshare", both_ways: bool = True) -> list[dict[str, Any]]:
    """(anchor, positive of the anchor, the other sentence) for each mined pair, both ways round
    unless not ``both_ways`` (a held sentence is the anchor, the sentence that holds it the negative)."""
    rows = []
    for a, b in negatives:
        for anchor, negative in ((a, b), (b, a)) if both_ways else ((a, b),):
            positive = positive_for(clusters, anchor, lang, rng)
            if positive is not None and positive != negative:
                rows.append({"anchor": anchor, "positive": positive, "negative": [negative],
                             "lang": lang, "source": source})
    return rows


def judged_rows(clusters: Clusters, triples: list[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    """Up to ``n`` of ``triples`` (in their order) to judge a model on: one query per cluster, and
    no query of the cluster of another row's word-sharing negative, so that no text in the corpus is
    a right answer to a query other than its own."""
    rows: list[dict[str, Any]] = []
    answered: set[str] = set()  # the queries' clusters
    wrong: set[str] = set()  # the word-sharing negatives' clusters
    for row in triples:
        query, negative = clusters.cluster[row["anchor"]], clusters.cluster[row["negative"][0]]
        if len(rows) < n and query not in answered | wrong and negative not in answered:
            rows.append(row)
            answered.add(query)
            wrong.add(negative)
    return rows


def synonym_pairs(groups: Iterable[Sequence[str]], glosses: dict[str, list[str]], uses: Counter[str],
                  tags: dict[str, str]) -> dict[str, list[str]]:
    """word → its synonyms: two Chinese words of one synonym group (``groups``, cnsyn) that also
    share an English gloss (``glosses``, CC-CEDICT: "to " and bracketed notes dropped) and a part
    of speech (``tags``: noun, verb or adjective), share no character, are each used
    ``MIN_SYNONYM_USES`` times (``uses``) and are not ``CARD_WORDS``. Each source alone is loose
    (cnsyn: 起床 ~ 康复; a shared gloss: 西装 ~ 适合, "suit"; both: 不是 ~ 过错, "not"/"fault")."""
    def senses(word: str) -> set[str]:
        found = set()
        for gloss in glosses.get(word, ()):
            if not _LOOSE_GLOSS.search(gloss):
                found.add(re.sub(r"^to ", "", re.sub(r"\(.*?\)", "", gloss).strip().lower()))
        return found - {""}

    def usable(word: str) -> bool:
        return (bool(_HAN_WORD.fullmatch(word)) and uses[word] >= MIN_SYNONYM_USES and word not in CARD_WORDS
                and tags.get(word) in SYNONYM_TAGS)

    out: dict[str, set[str]] = defaultdict(set)
    for group in groups:
        sense = {w: senses(w) for w in dict.fromkeys(group) if usable(w)}
        for a, of_a in sense.items():
            for b, of_b in sense.items():
                if a != b and not set(a) & set(b) and tags[a] == tags[b] and of_a & of_b:
                    out[a].add(b)
    return {word: sorted(alts) for word, alts in sorted(out.items())}


def swapped(words: Sequence[str], synonyms: dict[str, list[str]], rng: random.Random) -> str | None:
    """The sentence cut into ``words`` with every word that has synonyms replaced by one of them,
    or None if none has."""
    if not any(w in synonyms for w in words):
        return None
    return "".join(rng.choice(synonyms[w]) if w in synonyms else w for w in words)


def swap_triples(clusters: Clusters, near: dict[str, str], synonyms: dict[str, list[str]],
                 cut: Callable[[str], list[str]], rng: random.Random, everyone: bool = False,
                 source: str = "tatoeba-synonym") -> list[dict[str, Any]]:
    """(anchor, the anchor ``swapped`` for synonyms, its near miss ``near[anchor]``) for each Chinese
    sentence of ``clusters`` with a near miss that keeps more of its characters than the swap does; with
    ``everyone``, every other sentence with a swap too, as an (anchor, swap) pair."""
    rows = []
    for anchor in clusters.sentences("zh"):
        negative = near.get(anchor)
        if negative is None and not everyone:
            continue
        positive = swapped(cut(anchor), synonyms, rng)
        if positive is None or _bare(positive) in (_bare(anchor), _bare(negative or "")):
            continue
        row = {"anchor": anchor, "positive": positive, "lang": "zh", "source": source}
        if negative is not None and _kept(anchor, positive) < _kept(anchor, negative):
            row["negative"] = [negative]
        elif not everyone:
            continue
        rows.append(row)
    return rows
