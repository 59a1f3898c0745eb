"""Pairs: reading and validating pair files, and building our own from installed packages.

**Pair files** (what training and evaluation read) are JSONL, CSV or TSV (by extension); the
format is detected from the columns: ``anchor, positive[, negative]`` (``triplet``; ``negative``
may be a JSONL list, and ``negative_1, negative_2…`` columns are gathered into it),
``sentence1, sentence2, label`` (1/0) or ``sentence1, sentence2, score`` (in [0, 1]). An optional
``lang`` column splits evaluation reports. As an IR set (``pairs_to_ir``), each anchor (or
sentence1 of a pair labeled 1 / scored ≥ 0.5) is a query, its positives are relevant, and the
corpus is every positive and negative text, one document per distinct text. A **labelled** file
(``text, label``: texts sharing a label mean the same) is read here too, for the labelled losses
of ``textsearch train`` (``labelled.py``); every other reader asks for a pair format.

**The pair builder** (``build_pairs``) writes training, dev and test pairs from installed packages
and our hand-written triples. Sources (no download):
- ``hsk-sentences-audio``: 4,354 Chinese sentences with English translations and traditional forms
  → (zh, en) cross-lingual pairs and (simplified, traditional) pairs;
- ``cnsyn``'s ``sim_words.txt`` + ``jieba``: a sentence with one or two words replaced by a synonym
  → (zh, zh') paraphrase pairs;
- ``corpora/pairs/handwritten_*.jsonl``: triples we wrote (anchor, positive, word-sharing negative).

Every row gets a hard negative: the hand-written one, or for HSK rows the other HSK sentence that
shares the most words with the anchor (rendered like the positive: translated, traditional…).
Splits are decided per *source sentence* by a hash, so a test sentence and all its variants land
in the same split: nothing of the test split leaks into training.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import math
import os
import random
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from ..search import keyword
from ..errors import DISTRIBUTION, CorpusError, InvalidArgumentError, MissingExtraError

logger = logging.getLogger(__name__)

FORMATS: dict[str, tuple[str, ...]] = {
    "triplet": ("anchor", "positive"),
    "label": ("sentence1", "sentence2", "label"),
    "score": ("sentence1", "sentence2", "score"),
    "labelled": ("text", "label"),  # not a pair format: one text a row, a label for its meaning
}
PAIR_FORMATS = ("triplet", "label", "score")
_NEGATIVE_N = re.compile(r"^negative_(\d+)$")
Row = Mapping[str, Any]

HSK_SPLIT = {"train": 80, "dev": 10, "test": 10}  # percent of source sentences
HANDWRITTEN_SPLIT = {"train": 70, "dev": 10, "test": 20}
# The hand-written triples are the only rows whose negatives share words with the anchor, and only
# ~7% of the rows; repeating them 3 times (2 epochs) was best on the dev split and the demo queries (README).
HANDWRITTEN_WEIGHT = 3
_HAN = re.compile(r"^[\u4e00-\u9fff]{2,}$")


# --- pair files -----------------------------------------------------------------------------
@dataclass
class PairSet:
    """A validated pair file. Rows keep every column; triplet rows get ``negative`` as a list."""

    format: str  # "triplet", "label" or "score"; "labelled" for text, label rows
    rows: list[dict[str, Any]]
    columns: list[str]
    path: str = ""


@dataclass
class IRSet:
    """Queries, a corpus of distinct texts, and per query the corpus positions that are relevant."""

    queries: list[str]
    corpus: list[str]
    relevant: list[set[int]]


# --- reading --------------------------------------------------------------------------------
def read_records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, row) of a JSONL, CSV or TSV file (CSV/TSV: the header is line 1)."""
    suffix = path.suffix.lower()
    if suffix not in (".jsonl", ".csv", ".tsv"):
        raise InvalidArgumentError(f"{path}: give a .jsonl, .csv or .tsv file")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidArgumentError(f"cannot read {path} as UTF-8 text ({exc})") from exc
    if suffix == ".jsonl":
        for n, line in enumerate(text.split("\n"), 1):  # not splitlines(): U+2028 is valid JSON
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InvalidArgumentError(f"{path} line {n}: invalid JSON ({exc.msg})") from exc
            if not isinstance(row, dict):
                raise InvalidArgumentError(f"{path} line {n}: expected a JSON object")
            yield n, row
        return
    tsv = suffix == ".tsv"  # TSV: no quoting, so a text may start with a quotation mark
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter="\t" if tsv else ",",
                            quoting=csv.QUOTE_NONE if tsv else csv.QUOTE_MINIMAL)
    for row in reader:
        if None in row:
            where = f"{path} line {reader.line_num}"
            raise InvalidArgumentError(f"{where}: more fields than the header has")
        yield reader.line_num, {k.strip(): v for k, v in row.items() if v is not None}


def missing_column(where: str, column: str) -> InvalidArgumentError:
    return InvalidArgumentError(f"{where}: column '{column}' is missing or empty")


def _text(row: Row, column: str, where: str) -> str:
    value = row.get(column)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise missing_column(where, column)
    if not isinstance(value, str):
        raise InvalidArgumentError(f"{where}: column '{column}' must be text, not {value!r}")
    return value


def number_column(row: Row, column: str, where: str, allowed: str, ok: Callable[[float], bool]) -> float:
    value = row.get(column)
    if value is None or value == "":
        raise missing_column(where, column)
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not ok(number):
        raise InvalidArgumentError(f"{where}: column '{column}' must be {allowed}, got {value!r}")
    return number


def as_list(value: Any) -> list[Any]:
    return [] if value is None else list(value) if isinstance(value, (list, tuple)) else [value]


def _negatives(row: Row, where: str) -> list[str]:
    numbered = sorted((int(m.group(1)), k) for k in row if (m := _NEGATIVE_N.match(k)))
    found = as_list(row.get("negative")) + [row[k] for _, k in numbered]
    if any(not isinstance(n, str) for n in found if n is not None):
        raise InvalidArgumentError(f"{where}: column 'negative' must be text or a list of texts")
    return [n for n in found if n and n.strip()]


def _label_name(row: Row, where: str) -> str:
    """A labelled row's label as text: a string, or an integer written as one (JSONL ``3``)."""
    value = row.get("label")
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        if value is None:
            raise missing_column(where, "label")
        raise InvalidArgumentError(f"{where}: column 'label' must be text or an integer, not {value!r}")
    if not str(value).strip():
        raise missing_column(where, "label")
    return str(value).strip()


def _clean(row: dict[str, Any], fmt: str, where: str) -> dict[str, Any]:
    out = {k: v for k, v in row.items() if not _NEGATIVE_N.match(k)}
    if fmt == "labelled":
        return {**out, "text": _text(row, "text", where), "label": _label_name(row, where)}
    for column in FORMATS[fmt][:2]:
        out[column] = _text(row, column, where)
    if fmt == "triplet":
        out["negative"] = _negatives(row, where)
    elif fmt == "label":
        out["label"] = int(number_column(row, "label", where, "1 or 0", lambda x: x in (0.0, 1.0)))
    else:
        out["score"] = number_column(row, "score", where, "a number in [0, 1]", lambda x: 0 <= x <= 1)
    if out.get("lang") is not None:
        out["lang"] = str(out["lang"]).strip()
    return out


def read_pairs(path: str | os.PathLike[str], formats: Iterable[str] = PAIR_FORMATS) -> PairSet:
    """Read and validate a pair file (or, where ``formats`` names it, a labelled file); an error
    names the file, the line and the column."""
    path = Path(path)
    if not path.is_file():
        raise InvalidArgumentError(f"pairs file {path} not found")
    records = list(read_records(path))
    if not records:
        raise InvalidArgumentError(f"{path} holds no pairs")
    columns = list(dict.fromkeys(k for _, row in records for k in row))
    fmt = next((f for f, needed in FORMATS.items() if set(needed) <= set(columns)), None)
    formats = tuple(formats)
    wanted = " | ".join(", ".join(FORMATS[f]) for f in formats)
    if fmt is None:
        raise InvalidArgumentError(
            f"{path}: columns {', '.join(columns)} match no {'' if 'labelled' in formats else 'pair '}format "
            f"— use {wanted}")
    if fmt not in formats:
        raise InvalidArgumentError(
            f"{path} is a {fmt} file ({', '.join(FORMATS[fmt])}); this needs {wanted}")
    rows = [_clean(row, fmt, f"{path} line {n}") for n, row in records]
    return PairSet(format=fmt, rows=rows, columns=columns, path=str(path))


def _judged(row: Row) -> tuple[str, list[str], list[str]]:
    """(query, relevant texts, other corpus texts) of a row of any format."""
    if "anchor" in row:
        return row["anchor"], [row["positive"]], [n for n in as_list(row.get("negative")) if n]
    match = float(row["label"] if "label" in row else row["score"]) >= 0.5
    return row["sentence1"], [row["sentence2"]] * match, [row["sentence2"]] * (not match)


def pairs_to_ir(rows: Iterable[Row], distractors: Iterable[str] = ()) -> IRSet:
    """Each distinct query with its relevant texts; the corpus is every text, deduplicated."""
    corpus: dict[str, int] = {}
    relevant: dict[str, set[int]] = {}
    for row in rows:
        query, positives, others = _judged(row)
        if positives:
            ids = {corpus.setdefault(p, len(corpus)) for p in positives}
            relevant.setdefault(query, set()).update(ids)
        for text in others:
            corpus.setdefault(text, len(corpus))
    for text in distractors:
        corpus.setdefault(text, len(corpus))
    return IRSet(list(relevant), list(corpus), list(relevant.values()))


def labeled_pairs(rows: Iterable[Row]) -> list[tuple[str, str, int]]:
    """(text1, text2, 1/0); a triplet gives (anchor, positive, 1) and (anchor, negative, 0)."""
    out = []
    for row in rows:
        query, positives, others = _judged(row)
        out += [(query, p, 1) for p in positives] + [(query, o, 0) for o in others]
    return out


# --- the pair builder ------------------------------------------------------------------------
def split_of(key: str, ratios: dict[str, int]) -> str:
    """Deterministic split for a source key: the same key always lands in the same split."""
    bucket = int(hashlib.sha1(key.encode("utf-8")).hexdigest()[:8], 16) % 100
    for name, share in ratios.items():
        if bucket < share:
            return name
        bucket -= share
    return list(ratios)[-1]


def _package_path(package: str, *parts: str) -> Path:
    spec = find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise MissingExtraError(f"building pairs needs the package '{package}' — install the extra: "
                                f"pip install '{DISTRIBUTION}[train]'")
    return Path(list(spec.submodule_search_locations)[0], *parts)


def hsk_sentences() -> list[dict[str, Any]]:
    """HSK records, one per distinct simplified sentence."""
    path = _package_path("hsk_sentences_audio", "data", "sentences.json")
    records = json.loads(path.read_text(encoding="utf-8"))
    unique: dict[str, dict[str, Any]] = {}
    for r in records:
        if r.get("chinese") and r.get("translation", {}).get("en"):
            unique.setdefault(r["chinese"], r)
    return list(unique.values())


def load_synonyms(path: Path | None = None) -> dict[str, list[str]]:
    """word → synonyms, kept conservative: Chinese-only words of 2+ characters from small groups
    (large groups in sim_words.txt are loose topic clusters, not synonyms)."""
    path = path or _package_path("cnsyn", "chinese_dictionary", "sim_words.txt")
    synonyms: dict[str, list[str]] = defaultdict(list)
    for line in path.read_text(encoding="utf-8").splitlines():
        words = [w for w in line.split() if _HAN.match(w)]
        if not 2 <= len(words) <= 4:
            continue
        for word in words:
            synonyms[word] += [w for w in words if w != word and w not in synonyms[word]]
    return {word: alts for word, alts in synonyms.items() if alts}


def synonym_variant(sentence: str, synonyms: dict[str, list[str]], rng: random.Random) -> str | None:
    """The sentence with one or two segmented words swapped for a synonym, or None if none can be."""
    words = keyword.words(sentence)
    candidates = [i for i, w in enumerate(words) if w in synonyms]
    if not candidates:
        return None
    for i in rng.sample(candidates, min(len(candidates), rng.choice((1, 2)))):
        words[i] = rng.choice(synonyms[words[i]])
    variant = "".join(words)
    return variant if variant != sentence else None


def lexical_neighbours(texts: list[str]) -> list[int]:
    """For each text, the index of another text sharing the most (segmented) words with it."""
    tokens = [set(w for w in keyword.words(t) if w.strip() and not re.fullmatch(r"\W+", w)) for t in texts]
    df = Counter(w for ts in tokens for w in ts)
    postings: dict[str, list[int]] = defaultdict(list)
    for i, ts in enumerate(tokens):
        for w in ts:
            if df[w] <= 300:  # very common words say nothing about shared meaning
                postings[w].append(i)
    neighbours = []
    for i, ts in enumerate(tokens):
        overlap: Counter[int] = Counter(j for w in ts for j in postings.get(w, ()) if j != i)
        # ties go to the lower index, so the result never depends on set or hash order
        best = max(overlap.items(), key=lambda item: (item[1], -item[0]), default=None)
        neighbours.append(best[0] if best else (i + 1) % len(texts))
    return neighbours


def hsk_rows(seed: int = 0) -> list[dict[str, Any]]:
    """Pairs from HSK sentences, each with a word-sharing hard negative and its split."""
    records = hsk_sentences()
    zh = [r["chinese"] for r in records]
    neighbour = lexical_neighbours(zh)
    # cnsyn groups are loose ("名字" ~ "苗字"): only swap in words that everyday HSK text uses
    vocab = {t["word"] for r in records for t in r.get("tokens", [])}
    synonyms = {
        w: kept for w, alts in load_synonyms().items() if (kept := [a for a in alts if a in vocab])
    }
    rng = random.Random(seed)
    rows = []
    for i, r in enumerate(records):
        other = records[neighbour[i]]
        base = {"source": f"hsk:{r['id']}", "split": split_of(r["chinese"], HSK_SPLIT)}
        rows.append({"anchor": r["chinese"], "positive": r["translation"]["en"],
                     "negative": other["translation"]["en"], "lang": "zh-en", "kind": "translation", **base})
        if r.get("traditional") and r["traditional"] != r["chinese"] and rng.random() < 0.3:
            rows.append({"anchor": r["chinese"], "positive": r["traditional"],
                         "negative": other.get("traditional") or other["chinese"], "lang": "zh",
                         "kind": "traditional", **base})
        variant = synonym_variant(r["chinese"], synonyms, rng)
        if variant:
            rows.append({"anchor": r["chinese"], "positive": variant, "negative": other["chinese"],
                         "lang": "zh", "kind": "synonym", **base})
    return rows


def handwritten_rows(folder: Path) -> list[dict[str, Any]]:
    rows = []
    for path in sorted(folder.glob("handwritten_*.jsonl")):
        for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            row = json.loads(line)
            missing = [c for c in ("anchor", "positive", "negative", "lang") if not row.get(c)]
            if missing:
                raise CorpusError(f"{path} line {line_no}: missing {', '.join(missing)}")
            rows.append({**row, "source": f"{path.name}:{line_no}",
                         "split": split_of(row["anchor"], HANDWRITTEN_SPLIT)})
    return rows


def build_pairs(folder: str | Path = "corpora/pairs", seed: int = 0) -> dict[str, int]:
    """Write train.jsonl, dev.jsonl and the test files into ``folder``; returns rows per file.

    Test files: test_zh / test_en / test_zh_en (hand-written, with their hard negatives; the
    zh_en file adds the HSK translation test pairs) and test_hsk (synonym/traditional variants).
    """
    folder = Path(folder)
    hand = handwritten_rows(folder)
    if not hand:
        raise CorpusError(f"no handwritten_*.jsonl in {folder} — the hand-written triples are missing")
    rows = hand + hsk_rows(seed)
    # a synonym variant of one sentence can equal another sentence: held-out texts win
    held_out = {r[c] for r in rows if r["split"] != "train" for c in ("anchor", "positive")}
    rows = [r for r in rows if r["split"] != "train" or not {r["anchor"], r["positive"]} & held_out]
    files: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        split = row["split"]
        if split == "train" and row["source"].startswith("hsk:"):
            # the word-sharing neighbour is often a paraphrase itself (我很累/我很困): train HSK rows
            # on in-batch negatives only; dev/test keep it as a distractor in the corpus
            files[split].append({k: v for k, v in row.items() if k != "negative"})
        elif split == "train":
            files[split] += [row] * HANDWRITTEN_WEIGHT
        elif split != "test":
            files[split].append(row)
        elif row["source"].startswith("hsk:"):
            files["test_zh_en" if row["lang"] == "zh-en" else "test_hsk"].append(row)
        else:
            files[f"test_{row['lang'].replace('-', '_')}"].append(row)
    counts = {}
    for name, items in sorted(files.items()):
        _write_jsonl(folder / f"{name}.jsonl", ({k: v for k, v in r.items() if k != "split"} for r in items))
        counts[name] = len(items)
    return counts


def _write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    tmp = path.with_suffix(".jsonl.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    tmp.replace(path)
