"""Which libraries read PDF and HTML best: speed and correctness, measured on generated files.

PDF (pypdfium2, pypdf, pdfminer.six): multi-page Chinese and English PDFs are generated with two
producers (reportlab: justified, CJK wrapping, Chinese paragraphs marked by a first-line indent
only, English ones by a gap; fpdf2: justified ``multi_cell``, a gap after each paragraph)
from the background sentences (``textsearch/data/background.txt``), so every line break falls
where the layout put it — inside sentences, between two Chinese characters. Each library's text is
cut into paragraphs its own best way (pypdfium2: the line geometry rules of
``textsearch/documents/pdf.py``; pypdf: layout mode's blank lines; pdfminer.six: its text boxes)
and the lines of a paragraph are joined by ``text.join_lines`` (nothing between two CJK
characters). Measured per library: pages/s, spaces inside CJK text (between two CJK characters;
the source has none), the same count when line breaks are simply turned into spaces (what the
joining saves), and the share of source paragraphs found exactly (whitespace next to CJK
ignored: at a CJK–Latin break the source's space, if any, cannot be known).

HTML (selectolax/lexbor with ``textsearch/documents/html.py``'s rules; lxml with the same rules;
trafilatura; lxml's whole body text as the baseline): generated saved pages — semantic HTML5, a
"div soup" of classes, a Chinese news page, an index of several articles, misnested tags 300
divs deep, an old site's 360 paragraphs that each leave a <font> open, and a thread of 2,500
posts whose template leaves each post's <div> open — with known main text and known furniture
(navigation, scripts, styles, cookie banners, sidebars, footers).
Measured: share of main-text sentences kept (each occurrence), share of furniture snippets leaked, share of
headings kept as their own block, pages/s. The pages are written by the same hands as the rules:
real pages will score lower.

    pip install -e '.[bench]'                 # the candidates: pypdf, pdfminer.six, selectolax, trafilatura
    python benchmarks/bench_readers.py        # writes results/readers.json (about two minutes on 2 cores)
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import random
import re
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from textsearch.documents import html as html_reader
from textsearch.documents import pdf as pdf_reader
from textsearch.documents.text import is_wide, join_lines

ROOT = Path(__file__).resolve().parent.parent
FONT = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"
LIBRARIES = ["pypdfium2", "pypdf", "pdfminer.six", "lxml", "selectolax", "trafilatura", "python-docx",
             "reportlab", "fpdf2"]
LICENCES = {"pypdfium2": "Apache-2.0 or BSD-3-Clause (PDFium: BSD-3-Clause, Apache-2.0)",
            "pypdf": "BSD-3-Clause", "pdfminer.six": "MIT", "lxml": "BSD-3-Clause", "selectolax": "MIT",
            "trafilatura": "Apache-2.0", "python-docx": "MIT", "ebooklib": "AGPL-3.0 (not used)",
            "reportlab": "BSD (benchmark only)", "fpdf2": "LGPL-3.0 (tests and benchmark only)"}


def sentences() -> tuple[list[str], list[str]]:
    lines = (ROOT / "textsearch/data/background.txt").read_text(encoding="utf-8").splitlines()
    zh = [s.strip() for s in lines if s.strip() and any(is_wide(c) for c in s)]
    en = [s.strip() for s in lines if s.strip() and not any(is_wide(c) for c in s)]
    return zh, en


def paragraphs(pool: list[str], count: int, rng: random.Random, joiner: str) -> list[str]:
    return [joiner.join(rng.sample(pool, rng.randint(3, 7))) for _ in range(count)]


# --- generated PDFs ---------------------------------------------------------------------------------


def reportlab_pdf(path: Path, paras: list[str], cjk: bool) -> None:
    from reportlab.lib.enums import TA_JUSTIFY
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont
    from reportlab.platypus import Paragraph, SimpleDocTemplate

    if "wqy" not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(TTFont("wqy", FONT, subfontIndex=0))
    # Chinese the usual way: a first-line indent of two characters and no gap; English: a gap
    style = ParagraphStyle("body", fontName="wqy", fontSize=11, leading=16, alignment=TA_JUSTIFY,
                           spaceAfter=0 if cjk else 9, firstLineIndent=22 if cjk else 0,
                           wordWrap="CJK" if cjk else None)
    escape = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
    SimpleDocTemplate(str(path)).build(
        [Paragraph("".join(escape.get(c, c) for c in p), style) for p in paras])


def fpdf2_pdf(path: Path, paras: list[str]) -> None:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_font("wqy", fname=FONT)
    pdf.set_font("wqy", size=11)
    pdf.add_page()
    for para in paras:
        pdf.multi_cell(0, 6.5, para)
        pdf.ln(4)
    pdf.output(str(path))


# --- PDF candidates: each gives pages, each a list of paragraphs, each a list of lines -------------

Pages = list[list[list[str]]]


def pypdfium2_pages(path: Path) -> Pages:
    import pypdfium2

    document = pypdfium2.PdfDocument(str(path))
    pages = []
    for page in document:
        textpage = page.get_textpage()
        pages.append(pdf_reader.paragraphs(pdf_reader.lines(textpage)))
        textpage.close()
        page.close()
    document.close()
    return pages


def pypdf_pages(path: Path) -> Pages:
    import pypdf

    pages = []
    for page in pypdf.PdfReader(str(path)).pages:
        blocks = re.split(r"\n\s*\n", page.extract_text(extraction_mode="layout"))
        pages.append([block.splitlines() for block in blocks if block.strip()])
    return pages


def pdfminer_pages(path: Path) -> Pages:
    from pdfminer.high_level import extract_pages
    from pdfminer.layout import LTTextBox

    return [[box.get_text().splitlines() for box in page if isinstance(box, LTTextBox)]
            for page in extract_pages(str(path))]


PDF_CANDIDATES: dict[str, Callable[[Path], Pages]] = {
    "pypdfium2": pypdfium2_pages, "pypdf": pypdf_pages, "pdfminer.six": pdfminer_pages}

_CJK_SPACE = re.compile(r"(?<=[\u3000-\u303f\u3400-\u9fff\uff00-\uffef])\s+(?=[\u3000-\u303f\u3400-\u9fff\uff00-\uffef])")


def cjk_spaces(text: str) -> int:
    """Whitespace runs between two CJK characters (ideographs, CJK and full-width punctuation)."""
    return len(_CJK_SPACE.findall(text))


def normalise(text: str) -> str:
    """One space for each whitespace run, none next to a CJK character."""
    text = " ".join(text.split())
    return "".join(c for i, c in enumerate(text) if c != " " or not (
        is_wide(text[i - 1]) or (i + 1 < len(text) and is_wide(text[i + 1]))))


def score_pdf(pages: Pages, expected: list[str]) -> dict[str, Any]:
    """Counted inside each paragraph found (a paragraph break between two CJK characters is no
    error); the source's own spaces between CJK characters (a few sentences have one) subtracted."""
    found = [join_lines(lines) for page in pages for lines in page]
    naive = [" ".join(lines) for page in pages for lines in page]
    wanted = {normalise(p) for p in expected}
    exact = sum(1 for p in found if normalise(p) in wanted)
    own = sum(cjk_spaces(p) for p in expected)
    return {"cjk_spaces": sum(map(cjk_spaces, found)) - own,
            "cjk_spaces_lines_as_spaces": sum(map(cjk_spaces, naive)) - own,
            "paragraphs_expected": len(expected), "paragraphs_found": len(found),
            "paragraphs_exact": round(exact / len(expected), 3)}


def bench_pdf(folder: Path, repeats: int, paragraphs_per_doc: int) -> dict[str, Any]:
    import pypdfium2

    zh, en = sentences()
    rng = random.Random(7)
    documents = {}
    for name, pool, joiner, cjk in (("zh", zh, "", True), ("en", en, " ", False)):
        for producer in ("reportlab", "fpdf2"):
            paras = paragraphs(pool, paragraphs_per_doc, rng, joiner)
            path = folder / f"{name}-{producer}.pdf"
            if producer == "reportlab":
                reportlab_pdf(path, paras, cjk)
            else:
                fpdf2_pdf(path, paras)
            documents[path.stem] = (path, paras, len(pypdfium2.PdfDocument(str(path))))
    results: dict[str, Any] = {}
    for library, extract in PDF_CANDIDATES.items():
        per_doc, total_pages, total_seconds = {}, 0, 0.0
        for name, (path, paras, pages) in documents.items():
            times = []
            for _ in range(repeats):
                started = time.perf_counter()
                extracted = extract(path)
                times.append(time.perf_counter() - started)
            seconds = statistics.median(times)
            per_doc[name] = {"pages": pages, "seconds": round(seconds, 3),
                             "pages_per_s": round(pages / seconds, 1), **score_pdf(extracted, paras)}
            total_pages, total_seconds = total_pages + pages, total_seconds + seconds
        results[library] = {"pages_per_s": round(total_pages / total_seconds, 1),
                            "cjk_spaces": sum(d["cjk_spaces"] for d in per_doc.values()),
                            "cjk_spaces_lines_as_spaces": sum(d["cjk_spaces_lines_as_spaces"] for d in per_doc.values()),
                            "paragraphs_exact": round(statistics.mean(d["paragraphs_exact"] for d in per_doc.values()), 3),
                            "documents": per_doc}
        print(f"{library}: {results[library]['pages_per_s']} pages/s, {results[library]['cjk_spaces']} CJK spaces, "
              f"{results[library]['paragraphs_exact']:.3f} paragraphs exact", flush=True)
    return {"documents": {n: {"pages": p, "paragraphs": len(s)} for n, (_, s, p) in documents.items()},
            "candidates": results}


# --- generated HTML pages ---------------------------------------------------------------------------

FURNITURE = ["首页 新闻 体育 财经 科技", "Home About Products Contact", "var tracker = initAnalytics",
             "body { margin: 0 }", "We use cookies to improve your experience", "相关阅读：更多精彩内容",
             "Copyright 2024 Example Corp", "版权所有 © 2024 示例网", "Share on Twitter", "登录 注册",
             "Related posts you may like", "热门评论 网友留言"]


# Each kind of page: its markup around the main text ({title}, {body}; braces of its own doubled),
# and its sections' markup: a heading's and a paragraph's ({} where the text goes; a heading markup
# without {} leaves the heading out), and what wraps a whole section.
PAGE_MARKUP: dict[str, tuple[str, str, str, str]] = {
    "semantic": (
        ("<!DOCTYPE html><html><head><title>{title} | Example</title><style>body {{ margin: 0 }}</style>"
         "<script>var tracker = initAnalytics();</script></head><body>"
         "<header><a href='/'>Example</a><nav><a>Home</a> <a>About</a> <a>Products</a> <a>Contact</a></nav></header>"
         "<div class='cookie-banner'>We use cookies to improve your experience</div>"
         "<main><article><h1>{title}</h1>{body}<footer>Share on Twitter</footer></article></main>"
         "<aside><h3>Related posts you may like</h3><ul><li>One</li><li>Two</li></ul></aside>"
         "<footer>Copyright 2024 Example Corp</footer></body></html>"),
        "<h2>{}</h2>", "<p>{}</p>", "{}"),
    "div-soup": (
        ("<html><head><title>{title}</title><style>body {{ margin: 0 }}</style></head><body>"
         "<div id='top-nav' class='navbar'><ul><li>首页</li><li>新闻</li><li>体育</li><li>财经</li><li>科技</li></ul></div>"
         "<div class='login-bar'><span class='toolbar'>登录 注册</span></div>"
         "<div class='wrapper'><div class='content'><h1>{title}</h1>{body}</div>"
         "<div class='sidebar'><p>相关阅读：更多精彩内容</p></div></div>"
         "<div class='comments'><p>热门评论 网友留言</p></div>"
         "<script>var tracker = initAnalytics();</script>"
         "<div id='footer'>版权所有 © 2024 示例网</div></body></html>"),
        "<div class='sub-title'><h2>{}</h2></div>", "<div class='para'>{}</div>", "{}"),
    "news": (
        ("<html><head><meta charset='utf-8'><title>{title}_示例网</title></head><body>"
         "<div class='header'><div class='nav'>首页 新闻 体育 财经 科技</div></div>"
         "<div class='breadcrumb'>首页 &gt; 新闻</div>"
         "<div class='article'><h1>{title}</h1><div class='info'>2024-05-01</div>{body}</div>"
         "<div class='related'>相关阅读：更多精彩内容</div><div class='share'>Share on Twitter</div>"
         "<div class='footer'>版权所有 © 2024 示例网</div></body></html>"),
        "<h3>{}</h3>", "<p>{}</p>", "{}"),
    "index": (
        ("<html><body><nav>Home About Products Contact</nav><main><h1>{title}</h1>{body}</main>"
         "<footer>Copyright 2024 Example Corp</footer></body></html>"),
        "<h2>{}</h2>", "<p>{}</p>", "<article>{}</article>"),
    "malformed": (  # 300 unclosed <div>s, headings and inline tags left open or misnested
        "<nav>Home About Products Contact</nav>" + "<div>" * 300
        + "<h1>{title}</h1>{body}<script>var tracker = initAnalytics();</script><footer>Copyright 2024 Example Corp</footer>",
        "<h2>{}", "<p><b><i>{}</b></i>", "{}"),
    "unclosed-font": (  # an old site's markup: every paragraph opens a <font> it never closes
        ("<html><head><title>{title}</title></head><body><div class='nav'>首页 新闻 体育 财经 科技</div>"
         "<h1>{title}</h1>{body}<div class='footer'>版权所有 © 2024 示例网</div></body></html>"),
        "<h2>{}</h2>", "<p><font color='#333'>{}", "{}"),
    "unclosed-div": (  # a long thread whose template leaves each post's <div> open: the posts nest ever deeper
        "<html><body><nav>Home About Products Contact</nav><main><h1>{title}</h1>{body}</main></body></html>",
        "", "<p>{}</p>", "<div class='post'>{}"),
}
PAGES = {"semantic": (4, 3), "div-soup": (4, 3), "news": (4, 3), "index": (4, 3), "malformed": (4, 3),
         "unclosed-font": (120, 3), "unclosed-div": (2500, 1)}  # kind → (sections, paragraphs per section)


def page(kind: str, title: str, sections: list[tuple[str, list[str]]]) -> str:
    """A generated page of that kind holding ``title`` and the (heading, paragraphs) sections."""
    markup, heading, paragraph, wrap = PAGE_MARKUP[kind]
    body = "".join(wrap.format(heading.format(h) + "".join(paragraph.format(p) for p in ps)) for h, ps in sections)
    return markup.format(title=title, body=body)


def html_pages(rng: random.Random) -> list[tuple[str, str, list[str], list[str]]]:
    """(kind, page, main-text sentences, headings) per generated page."""
    zh, en = sentences()
    out = []
    for kind, (count, per_section) in PAGES.items():
        for pool, joiner in ((zh, ""), (en, " ")):
            title = rng.choice(pool)
            sections = [(rng.choice(pool), paragraphs(pool, per_section, rng, joiner)) for _ in range(count)]
            main = [s for _, ps in sections for p in ps for s in _sentences_of(p, pool)]
            html = page(kind, title, sections)
            marked = [h for h in [title] + [h for h, _ in sections] if any(f"<h{n}>{h}" in html for n in range(1, 7))]
            out.append((kind, html, main, marked))
    return out


def _sentences_of(paragraph: str, pool: list[str]) -> list[str]:
    return [s for s in pool if s in paragraph]


# --- HTML candidates ----------------------------------------------------------------------------------


def selectolax_rules(page: str) -> list[str]:
    return html_reader.read(page).text.split("\n\n")


def lxml_body_text(page: str) -> list[str]:
    import lxml.html

    return [join_lines(lxml.html.document_fromstring(page).text_content().split("\n"))]


def trafilatura_text(page: str) -> list[str]:
    import trafilatura

    return (trafilatura.extract(page, include_tables=True, include_comments=False, favor_recall=True) or "").split("\n")


def lxml_rules(page: str) -> list[str]:
    """html.py's rules on lxml's tree (libxml2's HTML parser), written for this comparison."""
    import lxml.etree
    import lxml.html

    parser = lxml.html.HTMLParser(encoding="utf-8", huge_tree=True)
    tree = lxml.html.document_fromstring(page.encode("utf-8"), parser=parser)
    lxml.etree.strip_elements(tree, lxml.etree.Comment, *html_reader.DROPPED, with_tail=False)
    root = _lxml_root(tree)
    total = len(root.text_content())
    blocks: list[str] = []
    lines: list[list[str]] = [[]]

    def flush() -> None:
        blocks.append("\n".join(filter(None, (join_lines("".join(line).split("\n")) for line in lines))))
        lines[:] = [[]]

    walker = lxml.etree.iterwalk(root, events=("start", "end"))
    for event, element in walker:
        tag = element.tag if isinstance(element.tag, str) else ""
        if event == "start":
            if element is not root and _lxml_boilerplate(element, tag, total):
                walker.skip_subtree()
                continue
            if tag in html_reader.HEADINGS:
                flush()
                blocks.append(join_lines(element.text_content().split("\n")))
                walker.skip_subtree()
                continue
            if tag in html_reader.BLOCKS:
                flush()
            elif tag == "br":
                lines.append([])
            lines[-1].append(element.text or "")
        elif element is not root:
            if tag in html_reader.BLOCKS:
                flush()
            elif tag in html_reader.CELLS:
                lines[-1].append(" ")
            lines[-1].append(element.tail or "")
    flush()
    return [b for b in blocks if b.strip()]


def _lxml_root(tree: Any) -> Any:
    for candidates in (tree.xpath("//main | //*[@role='main']"), tree.xpath("//article")):
        single = len(candidates) == 1 or (candidates and candidates[0].tag == "main")
        if single and candidates[0].text_content().strip():
            return candidates[0]
    body = tree.find("body")
    return body if body is not None else tree


def _lxml_boilerplate(element: Any, tag: str, total: int) -> bool:
    attrs = element.attrib
    if "hidden" in attrs or attrs.get("aria-hidden") == "true" or re.search(
            r"display\s*:\s*none|visibility\s*:\s*hidden", attrs.get("style", "")):
        return True
    if attrs.get("role", "").lower() in html_reader.BOILERPLATE_ROLES:
        return True
    if tag == "header" and not element.xpath(".//h1 | .//h2"):
        return True
    words = set(re.split(r"[^a-z0-9]+", f"{attrs.get('class', '')} {attrs.get('id', '')}".lower()))
    if words & html_reader.BOILERPLATE_WORDS and tag not in ("body", "main", "article"):
        return not element.xpath(".//h1") and 2 * len(element.text_content()) < total
    return False


HTML_CANDIDATES: dict[str, Callable[[str], list[str]]] = {
    "selectolax + rules (textsearch)": selectolax_rules, "lxml + rules": lxml_rules, "trafilatura": trafilatura_text,
    "lxml body text (baseline)": lxml_body_text}


def bench_html(repeats: int) -> dict[str, Any]:
    pages = html_pages(random.Random(11))
    results: dict[str, Any] = {}
    for name, extract in HTML_CANDIDATES.items():
        per_kind: dict[str, dict[str, list[float]]] = {}
        seconds = 0.0
        for kind, page, main, headings in pages:
            started = time.perf_counter()
            for _ in range(repeats):
                blocks = extract(page)
            seconds += (time.perf_counter() - started) / repeats
            text = normalise("\n".join(blocks))
            flat = {normalise(b) for b in blocks}
            scores = per_kind.setdefault(kind, {"main": [], "leaked": [], "headings": []})
            wanted = Counter(normalise(s) for s in main)  # a sentence may recur: each occurrence counts
            scores["main"].append(sum(min(n, text.count(s)) for s, n in wanted.items()) / len(main))
            scores["leaked"].append(sum(normalise(f) in text for f in FURNITURE) / len(FURNITURE))
            scores["headings"].append(sum(normalise(h) in flat for h in headings) / len(headings))
        summary = {kind: {k: round(statistics.mean(v), 3) for k, v in s.items()} for kind, s in per_kind.items()}
        results[name] = {
            "main_text_kept": round(statistics.mean(s["main"] for s in summary.values()), 3),
            "furniture_leaked": round(statistics.mean(s["leaked"] for s in summary.values()), 3),
            "headings_as_blocks": round(statistics.mean(s["headings"] for s in summary.values()), 3),
            "pages_per_s": round(len(pages) / seconds, 1), "pages": summary}
        print(f"{name}: {results[name]['main_text_kept']} kept, {results[name]['furniture_leaked']} leaked, "
              f"{results[name]['headings_as_blocks']} headings, {results[name]['pages_per_s']} pages/s", flush=True)
    return {"pages": len(pages), "kinds": list(PAGES), "candidates": results}


def versions() -> dict[str, str]:
    out = {}
    for name in LIBRARIES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paragraphs", type=int, default=120, help="paragraphs per generated PDF")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/readers.json")
    args = parser.parse_args()
    missing = [n for n, v in versions().items() if v == "not installed"]
    if missing:
        sys.exit(f"missing {', '.join(missing)} — pip install -e '.[bench]'")
    with tempfile.TemporaryDirectory() as folder:
        pdf = bench_pdf(Path(folder), args.repeats, args.paragraphs)
    html = bench_html(args.repeats * 10)
    command = "python benchmarks/bench_readers.py" + (f" --paragraphs {args.paragraphs}" if args.paragraphs != 120 else "")
    result = {"command": command, "textsearch_uses": {"pdf": "pypdfium2", "html": "selectolax + rules (textsearch)"}, "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                                              "python": platform.python_version()},
              "versions": versions(), "licences": LICENCES, "pdf": pdf, "html": html}
    args.out.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
