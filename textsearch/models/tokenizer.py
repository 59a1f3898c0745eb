"""A model folder's tokenizer without torch, for the ONNX Runtime path (``runtime.py``): texts and
(query, passage) pairs in, the ids transformers' fast tokenizer gives out. The only module that
imports sentencepiece and tokenizers.

A Unigram ``tokenizer.json`` (XLM-R's, e5's) also runs as a sentencepiece model built from it once
(``spm_model``) and kept only where it gives ``tokenizers``' ids on the check texts.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .cache import file_lock

logger = logging.getLogger(__name__)

SPM_FILE = "tokenizer.spm"  # the tokenizer as a sentencepiece model: loads in half the time, in a tenth of the memory
SPECIAL_TEXTS = ("<s>", "</s>", "<pad>", "<unk>", "<mask>")
PAIR_ADDED = 4  # <s> A </s></s> B </s>: XLM-R's pair template, the one the sentencepiece path builds


class LightTokenizer:
    """A model folder's tokenizer without torch, called like a transformers fast tokenizer for
    what ``encode``, ``score_pairs`` and ``count_tokens`` ask (ids only; a pair's token types
    where they are not all 0), giving the same ids.

    Three ways, the lightest that gives transformers' ids: a Unigram ``tokenizer.json`` (XLM-R's,
    e5's) also runs as a sentencepiece model built from it once (``spm_model``), which loads in
    0.35 s and ~30 MB instead of 0.65 s and ~300 MB — the difference between a cold query under
    a second and over it — for texts with no whitespace at either end (what ``encode`` sends, and
    most of what ``count_tokens`` is asked); other texts go to ``tokenizers``; a text that names a special token
    (``<s>``…) to transformers itself, which strips the space before it. Each loads on first use.
    Pairs (``text_pair``) always get the special tokens, and are cut as transformers'
    ``truncation=True`` cuts them (``longest_first``). With a sentencepiece model, pairs with
    whitespace at either end of a text go to transformers, not to ``tokenizers``: transformers 5
    rebuilds XLM-R's pre-tokenizer, which drops that whitespace where ``tokenizer.json``'s keeps a
    trailing "▁" token (transformers 4 keeps it too)."""

    def __init__(self, path: Path, spm: Path | None = None) -> None:
        self.path = path
        self._tokenizers: Any = None
        self._transformers: Any = None
        self._max: int | None = None  # the truncation the tokenizers tokenizer is set to
        self._spm: Any = None
        if spm is not None:
            self._spm = sentencepiece_processor(spm)
            self.pad_token_id = 1
        else:
            self.pad_token_id = self.tokenizers.token_to_id("<pad>") or 0

    @property
    def tokenizers(self) -> Any:
        if self._tokenizers is None:
            from tokenizers import Tokenizer

            self._tokenizers = Tokenizer.from_file(str(self.path))
            self._tokenizers.no_padding()
        return self._tokenizers

    @property
    def transformers(self) -> Any:
        if self._transformers is None:
            from transformers import AutoTokenizer

            self._transformers = AutoTokenizer.from_pretrained(str(self.path.parent), trust_remote_code=False)
        return self._transformers

    def __call__(self, texts: Sequence[str], text_pair: Sequence[str] | None = None, truncation: bool = False,
                 max_length: int | None = None, add_special_tokens: bool = True,
                 **_: Any) -> dict[str, list[list[int]]]:
        limit = max_length if truncation else None
        texts = list(texts)
        if text_pair is not None:
            return self._pairs(texts, list(text_pair), limit)
        if _names_special(texts):
            found = self.transformers(texts, truncation=truncation, max_length=max_length,
                                      add_special_tokens=add_special_tokens, return_attention_mask=False)
            return {"input_ids": found["input_ids"]}
        if self._spm is not None and all(t == t.strip() for t in texts):
            if not add_special_tokens:
                return {"input_ids": [ids[:limit] for ids in self._spm.encode(texts)]}
            keep = None if limit is None else limit - 2
            return {"input_ids": [[0, *ids[:keep], 2] for ids in self._spm.encode(texts)]}
        self._truncate(limit)
        encodings = self.tokenizers.encode_batch(texts, add_special_tokens=add_special_tokens)
        return {"input_ids": [e.ids for e in encodings]}

    def _pairs(self, first: list[str], second: list[str], limit: int | None) -> dict[str, list[list[int]]]:
        """Each (first, second) pair as one sequence: on sentencepiece when every text is plain,
        else on transformers; on ``tokenizers`` where there is no sentencepiece model."""
        both = first + second
        plain = all(_plain(t) for t in both)
        if self._spm is not None and plain:
            budget = None if limit is None else limit - PAIR_ADDED
            cut = (longest_first(a, b, budget) for a, b in zip(self._spm.encode(first), self._spm.encode(second)))
            return {"input_ids": [[0, *a, 2, 2, *b, 2] for a, b in cut]}  # token types all 0 (checked)
        if self._spm is not None or _names_special(both):
            found = self.transformers(first, second, truncation=limit is not None, max_length=limit,
                                      return_attention_mask=False)
            return {name: found[name] for name in ("input_ids", "token_type_ids") if name in found}
        self._truncate(limit)
        encodings = self.tokenizers.encode_batch(list(zip(first, second)))
        return {"input_ids": [e.ids for e in encodings], "token_type_ids": [e.type_ids for e in encodings]}

    def _truncate(self, limit: int | None) -> None:
        """The truncation setting is the tokenizer's state: change it only when asked."""
        if limit != self._max:
            if limit is None:
                self.tokenizers.no_truncation()
            else:
                self.tokenizers.enable_truncation(limit)  # longest_first for pairs, as transformers asks
            self._max = limit


_PROCESSORS: dict[str, Any] = {}
_PROCESSORS_LOCK = threading.Lock()


def sentencepiece_processor(spm: Path) -> Any:
    """One sentencepiece processor per model file's content per process: the encoder and the
    reranker built on the same base share one (a query with ``--rerank`` loads it once)."""
    proto = spm.read_bytes()
    key = hashlib.sha256(proto).hexdigest()
    with _PROCESSORS_LOCK:
        if key not in _PROCESSORS:
            import sentencepiece

            _PROCESSORS[key] = sentencepiece.SentencePieceProcessor(model_proto=proto)
        return _PROCESSORS[key]


def longest_first(a: list[int], b: list[int], budget: int | None) -> tuple[list[int], list[int]]:
    """``a`` and ``b`` cut to ``budget`` tokens together, as tokenizers' ``longest_first`` cuts a
    pair: the shorter one whole and the longer one to what is left, unless the shorter one takes
    over half; then each gets half, the longer one (the second, when they are as long) the odd
    token. Each keeps its first tokens."""
    if budget is None or len(a) + len(b) <= budget:
        return a, b
    short = min(len(a), len(b))
    keep_short, keep_long = short, max(short, budget - short) if short <= budget else short
    if keep_short + keep_long > budget:
        keep_short, keep_long = budget // 2, budget // 2 + budget % 2
    keep_a, keep_b = (keep_long, keep_short) if len(a) > len(b) else (keep_short, keep_long)
    return a[:keep_a], b[:keep_b]


def _names_special(texts: Sequence[str]) -> bool:
    """Some text names a special token (``<s>``…): transformers tokenises it, as a model would."""
    return any(s in t for t in texts for s in SPECIAL_TEXTS)


def _plain(text: str) -> bool:
    return text == text.strip() and not _names_special([text])


def spm_model(tokenizer_json: Path, folder: Path, check_texts: Sequence[str], pairs: bool = False) -> Path | None:
    """``folder/tokenizer.spm``: the Unigram tokenizer of ``tokenizer_json`` as a sentencepiece
    model, built once and kept only if it gives the same ids as ``tokenizers`` on the check texts
    — with ``pairs`` (a reranker's), also on pairs of them, whole and cut short, as
    ``LightTokenizer`` assembles them — else None, and the exact tokenizer is used."""
    path = folder / SPM_FILE
    if path.is_file():
        return path
    if (folder / (SPM_FILE + ".refused")).is_file():
        return None
    try:
        import base64

        import sentencepiece
        from sentencepiece import sentencepiece_model_pb2 as pb
        from tokenizers import Tokenizer
    except ImportError:
        return None
    spec = json.loads(tokenizer_json.read_text(encoding="utf-8"))
    model, normalizers = spec.get("model") or {}, (spec.get("normalizer") or {}).get("normalizers") or []
    charsmaps = [n["precompiled_charsmap"] for n in normalizers if n.get("type") == "Precompiled"]
    vocab = model.get("vocab") or []
    if model.get("type") != "Unigram" or len(charsmaps) != 1 or [v[0] for v in vocab[:4]] != ["<s>", "<pad>", "</s>", "<unk>"]:
        return None
    proto = pb.ModelProto()
    proto.trainer_spec.model_type = pb.TrainerSpec.UNIGRAM
    proto.trainer_spec.vocab_size = len(vocab)
    proto.trainer_spec.unk_id, proto.trainer_spec.bos_id, proto.trainer_spec.eos_id = 3, -1, -1
    proto.trainer_spec.pad_id = -1
    proto.normalizer_spec.name = "user_defined"
    proto.normalizer_spec.precompiled_charsmap = base64.b64decode(charsmaps[0])
    proto.normalizer_spec.add_dummy_prefix = True
    proto.normalizer_spec.remove_extra_whitespaces = True
    proto.normalizer_spec.escape_whitespaces = True
    kinds = pb.ModelProto.SentencePiece
    for i, (piece, score) in enumerate(vocab):
        entry = proto.pieces.add()
        entry.piece, entry.score = piece, score
        entry.type = kinds.UNKNOWN if i == 3 else kinds.CONTROL if piece in SPECIAL_TEXTS else kinds.NORMAL
    with file_lock(folder / f".{SPM_FILE}.lock"):
        tmp = folder / f"{SPM_FILE}.tmp"
        tmp.write_bytes(proto.SerializeToString())
        fast, exact = sentencepiece.SentencePieceProcessor(model_file=str(tmp)), Tokenizer.from_file(str(tokenizer_json))
        texts = [t for t in [*check_texts, *SPM_CHECK_TEXTS] if _plain(t)]
        same = fast.encode(texts) == [e.ids for e in exact.encode_batch(texts, add_special_tokens=False)]
        if same and pairs:
            same = _same_pairs(LightTokenizer(tokenizer_json, tmp), exact, texts)
        if not same:
            tmp.unlink()
            (folder / (SPM_FILE + ".refused")).write_text("sentencepiece ids differ on the check texts\n")
            logger.warning("the tokenizer of %s does not convert to sentencepiece exactly; using tokenizers",
                           tokenizer_json.parent)
            return None
        os.replace(tmp, path)
    return path


def _same_pairs(light: LightTokenizer, exact: Any, texts: list[str]) -> bool:
    """The sentencepiece path's pairs (template, longest_first cut) are ``tokenizers``' own, whole
    and cut to a few lengths, with every token type 0."""
    pairs = list(zip(texts, [*texts[7:], *texts[:7]]))
    for limit in (None, 40, 17, 9):
        if limit is None:
            exact.no_truncation()
        else:
            exact.enable_truncation(limit)
        wanted = exact.encode_batch(pairs)
        found = light([a for a, _ in pairs], [b for _, b in pairs], truncation=limit is not None, max_length=limit)
        if found != {"input_ids": [e.ids for e in wanted]} or any(any(e.type_ids) for e in wanted):
            return False
    return True


SPM_CHECK_TEXTS = [
    "query: 可爱的宝宝", "passage: Mixed 中文 and English, 123,456.78", "a  b\tc\nd", "Ünïcödé ｆｕｌｌ　ｗｉｄｔｈ",
    "😀 emoji 😀", "ÀÉÎ õü ß ﬁ", "日本語のテキストも少し", "한국어 텍스트", "Ελληνικά και русский", "e-mail: a.b@c.d",
    "https://example.com/a?b=c", "C++ & C# <tag> {json: 1}", "“quotes” ‘and’ — dashes …", "１２３ ＡＢＣ",
]
