"""The document readers: PDF, Word, HTML, EPUB and Markdown headings give the exact text and
locations; bad files (scans, truncated, locked, corrupt, zip bombs, too large) are each skipped
with one warning while the other files are indexed and nothing indexed is lost. Every file is
made here (``files``); none is committed."""

from __future__ import annotations

import json
import logging
import sys
import zipfile
from pathlib import Path

import pytest

import textsearch.documents
from tests.documents import files
from textsearch import Index
from textsearch.documents import readers
from textsearch.documents.archive import open_zip
from textsearch.documents.corpus import Corpus, Skipped
from textsearch.documents.markdown import headings
from textsearch.documents.text import join_lines
from textsearch.errors import DocumentReadError
from textsearch.testing import KeywordEncoder

ZH = ["北京是中华人民共和国的首都，也是全国的政治中心和文化中心。",
      "这座城市有三千多年的建城史，保留了大量的古代建筑，例如故宫、天坛和颐和园。"]
EN = ["The quick brown fox jumps over the lazy dog while the farmer watches from a distance.",
      "A second paragraph, short."]
KEPT = " — its indexed version, if any, is kept"


def documents(folder: Path) -> tuple[dict[str, object], list[Skipped]]:
    corpus = Corpus(folder)
    docs = {doc.id: doc for doc in corpus.documents()}
    return docs, corpus.skipped


# --- line joining and Markdown ------------------------------------------------------------------


@pytest.mark.parametrize(("lines", "joined"), [
    (["北京是中华人民共和国", "的首都。"], "北京是中华人民共和国的首都。"),  # CJK–CJK: nothing
    (["也是全国的政治中心，", "和文化中心。"], "也是全国的政治中心，和文化中心。"),  # full-width punctuation too
    (["the quick brown", "fox jumps"], "the quick brown fox jumps"),  # Latin–Latin: a space
    (["使用", "Python 编程"], "使用Python 编程"),  # CJK–Latin: nothing (the source may have had none)
    (["well-", "known"], "well-known"),  # a hyphen ending a word: nothing, the hyphen kept
    (["exam\u00ad", "ple"], "example"),  # a soft hyphen: removed
    (["  a   b  ", "", "c"], "a b c"),  # runs of spaces inside a line become one; blank lines vanish
])
def test_join_lines(lines: list[str], joined: str) -> None:
    assert join_lines(lines) == joined


MARKDOWN = """---
title: 报告
---
# 第一章 总则
正文。
## 背景 ##
```
# 代码里的井号不是标题
```
Setext 标题
===========
    # indented code
小节
----
- list item
---
### C#
"""


def test_markdown_headings_are_located_where_their_sections_start() -> None:
    found = headings(MARKDOWN)
    assert found == [
        (MARKDOWN.index("# 第一章"), {"heading": "第一章 总则"}),
        (MARKDOWN.index("## 背景"), {"heading": "第一章 总则 › 背景"}),
        (MARKDOWN.index("Setext"), {"heading": "Setext 标题"}),  # the heading's text line, not its underline
        (MARKDOWN.index("小节"), {"heading": "Setext 标题 › 小节"}),
        (MARKDOWN.index("### C#"), {"heading": "Setext 标题 › 小节 › C#"}),  # "---" after a list: a rule
    ]
    assert [offset for offset, _ in found] == [18, 31, 61, 103, 127]


def test_a_markdown_file_keeps_its_text_and_gains_its_headings(tmp_path: Path) -> None:
    (tmp_path / "notes.md").write_text(MARKDOWN, encoding="utf-8")
    docs, skipped = documents(tmp_path)
    assert docs["notes.md"].text == MARKDOWN and skipped == []
    assert docs["notes.md"].locations == headings(MARKDOWN)


# --- PDF ----------------------------------------------------------------------------------------


@files.needs_cjk_font
def test_a_chinese_pdf_joins_lines_broken_inside_sentences(tmp_path: Path) -> None:
    """60 mm columns break each sentence over three lines, between two Chinese characters: the
    text comes back exactly, paragraphs apart, each page located where its text starts."""
    files.pdf(tmp_path / "报告.pdf", [ZH, ["第二页的内容。"]], width=60)
    docs, skipped = documents(tmp_path)
    doc = docs["报告.pdf"]
    page_one = f"{ZH[0]}\n\n{ZH[1]}"
    assert doc.text == f"{page_one}\n\n第二页的内容。" and skipped == []
    assert doc.locations == [(0, {"page": 1}), (len(page_one) + 2, {"page": 2})]
    assert doc.metadata == {"path": "报告.pdf", "type": "pdf", "lang": "zh"}


def test_an_english_pdf_joins_lines_with_spaces(tmp_path: Path) -> None:
    files.pdf(tmp_path / "manual.pdf", [EN, ["Page two."], [], ["Page four."]], width=80)
    doc = documents(tmp_path)[0]["manual.pdf"]
    page_one = f"{EN[0]}\n\n{EN[1]}"
    assert doc.text == f"{page_one}\n\nPage two.\n\nPage four."
    assert doc.locations == [(0, {"page": 1}), (len(page_one) + 2, {"page": 2}),
                             (len(page_one) + 13, {"page": 4})]  # the empty page 3 has no location


# --- Word, HTML, EPUB ---------------------------------------------------------------------------


def test_a_word_file_gives_its_paragraphs_tables_and_headings(tmp_path: Path) -> None:
    files.docx(tmp_path / "report.docx")
    doc = documents(tmp_path)[0]["report.docx"]
    blocks = ["年度报告", "前言：本报告总结全年工作。", "第一章 总则", "公司全年营收增长了百分之十二。", "背景",
              "市场需求持续上升。", "第二章 展望", "季度 营收", "一季度 二季度 120万", "明年计划开拓海外市场。"]
    assert doc.text == "\n\n".join(blocks)
    assert doc.locations == [(doc.text.index("第一章"), {"heading": "第一章 总则"}),
                             (doc.text.index("背景"), {"heading": "第一章 总则 › 背景"}),
                             (doc.text.index("第二章"), {"heading": "第二章 展望"})]
    assert doc.metadata["type"] == "docx"


PAGE = """<!DOCTYPE html><html><head><title>天气预报 | 示例网</title>
<style>body { color: red }</style><script>var tracker = 1;</script></head>
<body><header><a href="/">示例网</a></header>
<nav><a>首页</a> <a>新闻</a></nav><div class="cookie-banner">We use cookies</div>
<main><h1>明天的天气</h1><p>明天有大雨，
出门记得带伞。</p><h2>Weekend</h2><p>Sunny and
warm.<br>Light wind.</p><ul><li>周六：晴</li><li>周日：多云</li></ul>
<table><tr><td>最高</td><td>30度</td></tr></table></main>
<aside>相关阅读</aside><footer>版权所有</footer></body></html>"""


def test_a_saved_web_page_gives_its_main_text_and_headings(tmp_path: Path) -> None:
    """Head, scripts, styles, navigation, banners, asides and footers are dropped; the source's
    line break inside a Chinese sentence is joined without a space, an English one with one."""
    (tmp_path / "weather.html").write_bytes(PAGE.encode("gbk"))  # decoded like any text file
    doc = documents(tmp_path)[0]["weather.html"]
    assert doc.text == ("明天的天气\n\n明天有大雨，出门记得带伞。\n\nWeekend\n\nSunny and warm.\nLight wind."
                        "\n\n周六：晴\n\n周日：多云\n\n最高 30度")
    assert doc.locations == [(0, {"heading": "明天的天气"}), (22, {"heading": "明天的天气 › Weekend"})]
    assert doc.text[22:29] == "Weekend"
    assert doc.metadata == {"path": "weather.html", "type": "html", "lang": "zh"}


def test_a_page_inside_one_form_keeps_its_text(tmp_path: Path) -> None:
    """ASP.NET pages wrap the whole body in a <form>: only its controls are dropped."""
    (tmp_path / "gov.aspx.html").write_text(
        '<body><form id="form1"><input name="q"><button>搜索</button><select><option>全部</option></select>'
        "<h1>通知</h1><p>明天停水。</p></form></body>", encoding="utf-8")
    doc = documents(tmp_path)[0]["gov.aspx.html"]
    assert (doc.text, doc.locations) == ("通知\n\n明天停水。", [(0, {"heading": "通知"})])


def test_a_page_of_markup_only_is_skipped(tmp_path: Path) -> None:
    (tmp_path / "empty.htm").write_text("<html><script>x()</script><nav>menu</nav></html>", encoding="utf-8")
    (tmp_path / "a.txt").write_text("text", encoding="utf-8")
    docs, skipped = documents(tmp_path)
    assert list(docs) == ["a.txt"] and skipped == [Skipped("empty.htm", "no text")]


CHAPTERS = {
    "ch1.xhtml": files.chapter("c1", "<h1>第一章 出发</h1><p>清晨，我们出发了。</p><h2>路上</h2><p>风很大。</p>"),
    "ch1b.xhtml": files.chapter("c1b", "<p>继续赶路。</p>"),  # the same chapter, split: not in the contents
    "ch2.xhtml": files.chapter("c2", "<h1>第二章 到达</h1><p>终于到了。</p>"),
}
TOC = {"ch1.xhtml": "第一章 出发", "ch2.xhtml": "第二章 到达"}
BOOK = "第一章 出发\n\n清晨，我们出发了。\n\n路上\n\n风很大。\n\n继续赶路。\n\n第二章 到达\n\n终于到了。"
BOOK_LOCATIONS = [(0, {"chapter": "第一章 出发", "heading": "第一章 出发"}),
                  (19, {"chapter": "第一章 出发", "heading": "第一章 出发 › 路上"}),
                  (36, {"chapter": "第二章 到达", "heading": "第二章 到达"})]


@pytest.mark.parametrize("nav", [True, False], ids=["epub3-nav", "epub2-ncx"])
def test_an_epub_gives_its_chapters_in_reading_order(tmp_path: Path, nav: bool) -> None:
    """The table of contents names the chapters (and is not indexed itself); a file missing from
    it continues the chapter before it."""
    files.epub(tmp_path / "novel.epub", CHAPTERS, TOC, nav=nav)
    doc = documents(tmp_path)[0]["novel.epub"]
    assert doc.text == BOOK and doc.locations == BOOK_LOCATIONS
    assert BOOK[19:21] == "路上" and BOOK[36:39] == "第二章"


def test_an_epub_chapter_without_headings_is_located_by_its_title(tmp_path: Path) -> None:
    chapters = {"a.xhtml": files.chapter("序", "<p>很久以前。</p>"), "b.xhtml": files.chapter("x", "<p>后来。</p>")}
    files.epub(tmp_path / "short.epub", chapters, {"b.xhtml": "尾声"})
    doc = documents(tmp_path)[0]["short.epub"]
    assert doc.text == "很久以前。\n\n后来。"
    assert doc.locations == [(0, {"chapter": "序"}), (7, {"chapter": "尾声"})]


# --- bad files: one warning each, the rest indexed ------------------------------------------------


def bad_folder(folder: Path) -> dict[str, str]:
    """Good files and one of each bad kind; the reason each bad one is skipped for."""
    folder.mkdir()
    (folder / "notes.txt").write_text("the cat and the dog", encoding="utf-8")
    files.pdf(folder / "good.pdf", [EN])
    files.scanned_pdf(folder / "scan.pdf")
    data = files.pdf(folder / "whole.pdf", [EN, EN]).read_bytes()
    (folder / "whole.pdf").unlink()
    (folder / "truncated.pdf").write_bytes(data[: len(data) // 2])
    files.pdf(folder / "locked.pdf", [EN], password="secret")
    (folder / "corrupt.docx").write_bytes(b"PK\x03\x04 this is no zip")
    (folder / "empty-zip.docx").write_bytes(files.zip_of({"[Content_Types].xml": b"<Types/>"}))
    files.zip_bomb(folder / "bomb.docx", "word/document.xml", 30 * 2**20)
    files.zip_bomb(folder / "bomb.epub", "OEBPS/chapter.xhtml", 30 * 2**20)
    with open(folder / "huge.pdf", "wb") as huge:
        huge.truncate(500 * 2**20)  # sparse: 500 MB on paper, nothing on disk
    (folder / "old.doc").write_bytes(b"\xd0\xcf\x11\xe0")

    def ratio(name: str) -> str:
        return f"{30 * 2**20 / (folder / name).stat().st_size:,.0f}"

    return {
        "bomb.docx": f"Word file would unpack to {ratio('bomb.docx')} times its size (a zip bomb?): not read{KEPT}",
        "bomb.epub": f"EPUB would unpack to {ratio('bomb.epub')} times its size (a zip bomb?): not read{KEPT}",
        "corrupt.docx": f"not a valid Word file (a damaged or truncated zip: File is not a zip file){KEPT}",
        "huge.pdf": "524,288,000 bytes is over the 100,000,000-byte limit for PDF, Word and EPUB files "
                    "(10 × --max-file-mb)",
        "locked.pdf": f"password-protected PDF: remove the password to index it{KEPT}",
        "old.doc": "Word 97–2003 file: save it as .docx to index it",
        "scan.pdf": "PDF without a text layer (a scan? textsearch does no OCR)",
        "truncated.pdf": f"truncated PDF (it does not end with %%EOF: a copy or download not finished?){KEPT}",
    }


def test_each_bad_file_gets_one_warning_and_the_others_are_indexed(tmp_path: Path,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    reasons = bad_folder(tmp_path / "mixed")
    corpus = Corpus(tmp_path / "mixed")
    with caplog.at_level(logging.WARNING, logger="textsearch.documents.corpus"):
        ids = [doc.id for doc in corpus.documents()]
    assert ids == ["good.pdf", "notes.txt"]
    skipped = {s.path: s.reason for s in corpus.skipped}
    # a zip without the Word document: the message is python-docx's own, whatever its version says
    reasons["empty-zip.docx"] = skipped["empty-zip.docx"]
    assert reasons["empty-zip.docx"].startswith("damaged Word file (") and reasons["empty-zip.docx"].endswith(KEPT)
    assert skipped == reasons
    assert sorted(r.getMessage() for r in caplog.records) == sorted(f"skipped {p}: {r}" for p, r in reasons.items())
    # what cannot be read this time keeps its documents; what reads as no text, or is refused, does not
    assert sorted(corpus.unreadable) == ["bomb.docx", "bomb.epub", "corrupt.docx", "empty-zip.docx",
                                         "locked.pdf", "truncated.pdf"]


def test_the_size_limit_of_documents_follows_the_text_limit(tmp_path: Path) -> None:
    files.pdf(tmp_path / "a.pdf", [EN])
    size = (tmp_path / "a.pdf").stat().st_size
    corpus = Corpus(tmp_path, max_file_bytes=size // 10)  # documents may be 10 times larger
    assert [d.id for d in corpus.documents()] == []
    limit = size // 10 * 10
    assert corpus.skipped == [Skipped("a.pdf", f"{size:,} bytes is over the {limit:,}-byte limit for PDF, Word "
                                               "and EPUB files (10 × --max-file-mb)")]
    assert [d.id for d in Corpus(tmp_path, max_document_bytes=size).documents()] == ["a.pdf"]


def test_a_zip_is_refused_past_its_total_from_the_declared_sizes(tmp_path: Path) -> None:
    path = tmp_path / "big.epub"
    path.write_bytes(files.zip_of({"a.xhtml": b"x" * 3000, "b.xhtml": b"y" * 3000}))
    with pytest.raises(DocumentReadError, match=r"^EPUB would unpack to 6,000 bytes, over the 5,000-byte limit"):
        open_zip(path, "EPUB", max_unzipped=5000)
    with open_zip(path, "EPUB", max_unzipped=6000) as book:
        assert book.namelist() == ["a.xhtml", "b.xhtml"]


def test_an_epub_with_encrypted_chapters_is_refused(tmp_path: Path) -> None:
    files.epub(tmp_path / "drm.epub", CHAPTERS, TOC, encrypted=["OEBPS/text/ch1.xhtml"])
    files.epub(tmp_path / "fonts.epub", CHAPTERS, TOC, encrypted=["OEBPS/fonts/a.otf"])  # obfuscated fonts: fine
    docs, skipped = documents(tmp_path)
    assert list(docs) == ["fonts.epub"]
    assert skipped == [Skipped("drm.epub", f"DRM-protected EPUB (its chapters are encrypted){KEPT}")]


def test_a_file_that_fails_to_read_keeps_its_last_good_version(tmp_path: Path) -> None:
    """Indexed, then truncated (a copy in progress): the index keeps it as it was. Then a scan
    without text: the file reads, holds nothing, and its documents go, as an emptied text file's."""
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "notes.txt").write_text("the dog", encoding="utf-8")
    good = files.pdf(folder / "manual.pdf", [["the cat sat on the mat"]]).read_bytes()
    with Index.create(tmp_path / "index", encoder=KeywordEncoder()) as idx:
        assert idx.index_folder(folder).added == 2
        (folder / "manual.pdf").write_bytes(good[: len(good) // 2])
        summary = idx.index_folder(folder)
        truncated = f"truncated PDF (it does not end with %%EOF: a copy or download not finished?){KEPT}"
        assert (summary.deleted, summary.skipped_files) == (0, [("manual.pdf", truncated)])
        assert idx.search("cat", k=1)[0].doc_id == "manual.pdf"
        files.scanned_pdf(folder / "manual.pdf")
        summary = idx.index_folder(folder)
        assert (summary.deleted, [h.doc_id for h in idx.search("cat", k=5)]) == (1, ["notes.txt"])


def test_a_missing_reader_library_warns_once_per_file_type(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """pypdfium2 not importable (None in sys.modules makes its import fail): both PDFs are
    skipped, one warning names the fix, the text file is indexed."""
    monkeypatch.setitem(sys.modules, "pypdfium2", None)
    monkeypatch.delitem(sys.modules, "textsearch.documents.pdf", raising=False)
    monkeypatch.delattr(textsearch.documents, "pdf", raising=False)  # `from . import pdf` looks here first
    (tmp_path / "a.pdf").write_bytes(b"%PDF-1.4")
    (tmp_path / "b.pdf").write_bytes(b"%PDF-1.4")
    (tmp_path / "c.txt").write_text("text", encoding="utf-8")
    corpus = Corpus(tmp_path)
    with caplog.at_level(logging.WARNING, logger="textsearch.documents.corpus"):
        assert [d.id for d in corpus.documents()] == ["c.txt"]
    reason = ("reading .pdf files needs pypdfium2, which does not import (import of pypdfium2 halted; None in "
              f"sys.modules) — pip install 'textsearch-zh' brings it{KEPT}")
    assert corpus.skipped == [Skipped("a.pdf", reason), Skipped("b.pdf", reason)]
    assert [r.getMessage() for r in caplog.records] == [f"skipped a.pdf: {reason}"]


def test_random_bytes_under_every_document_suffix_are_skipped(tmp_path: Path) -> None:
    """Whatever a library raises on garbage becomes a one-line reason."""
    junk = bytes(range(256)) * 8
    for suffix in readers.BINARY:
        (tmp_path / f"junk{suffix}").write_bytes(junk)
        (tmp_path / f"pk{suffix}").write_bytes(files.zip_of({"mimetype": b"x", "META-INF/container.xml": b"<"}))
    docs, skipped = documents(tmp_path)
    assert docs == {} and len(skipped) == 6
    assert all(s.reason.endswith(KEPT) and "\n" not in s.reason for s in skipped)
    assert zipfile.is_zipfile(tmp_path / "pk.epub")


# --- docs/formats.md's figures are the ones benchmarks/results/readers.json holds -------------------


def _tables(text: str) -> list[dict[str, list[str]]]:
    """Each markdown table of ``text`` as {first cell: the other cells}."""
    tables, rows = [], []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            rows.append([cell.strip() for cell in line.strip("|").split("|")])
        elif rows:
            tables.append({row[0]: row[1:] for row in rows[2:]})
            rows = []
    return tables


def test_the_formats_tables_are_readers_json() -> None:
    root = Path(__file__).resolve().parents[2]
    doc = (root / "docs" / "formats.md").read_text(encoding="utf-8")
    results = json.loads((root / "benchmarks" / "results" / "readers.json").read_text(encoding="utf-8"))
    assert f"`{results['command']}`" in doc
    pdf, html = [t for t in _tables(doc) if "pypdfium2" in t or "trafilatura" in t]
    assert pdf == {name: [f"{r['pages_per_s']:.1f}", str(r["cjk_spaces"]), str(r["cjk_spaces_lines_as_spaces"]),
                          f"{r['paragraphs_exact']:.3f}"] for name, r in results["pdf"]["candidates"].items()}
    assert html == {name: [f"{r['main_text_kept']:.3f}", f"{r['furniture_leaked']:.3f}",
                           f"{r['headings_as_blocks']:.3f}", f"{r['pages_per_s']:.1f}"]
                    for name, r in results["html"]["candidates"].items()}
    naive = [r["cjk_spaces_lines_as_spaces"] for r in results["pdf"]["candidates"].values()]
    pypdf_zh = results["pdf"]["candidates"]["pypdf"]["documents"]["zh-reportlab"]
    lexbor, lxml = (results["html"]["candidates"][n] for n in ("selectolax + rules (textsearch)", "lxml + rules"))
    flat = " ".join(doc.split())
    for phrase in (f"leaves {min(naive)} to {max(naive)}",
                   f"{pypdf_zh['paragraphs_found']} paragraphs found for {pypdf_zh['paragraphs_expected']}",
                   f"({lxml['pages']['unclosed-div']['main']:.3f} kept)",
                   f"misnested page ({lexbor['pages']['malformed']['headings']})",
                   f"({lxml['pages_per_s']:.1f} against {lexbor['pages_per_s']:.1f} pages/s)"):
        assert phrase in flat, phrase
