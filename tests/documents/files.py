"""Document files made on the spot for the reader tests (no binary fixture is committed): PDFs
with fpdf2, Word files with python-docx, EPUBs and zip bombs with zipfile."""

from __future__ import annotations

import io
import zipfile
from datetime import datetime, timezone
from pathlib import Path

import pytest

DATE = datetime(2024, 1, 1, tzinfo=timezone.utc)
FONT = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")
needs_cjk_font = pytest.mark.skipif(not FONT.exists(), reason="fonts-wqy-microhei is missing (make install gets it)")


def pdf(path: Path, pages: list[list[str]], *, width: float = 0, password: str | None = None) -> Path:
    """One page per list of paragraphs, each a ``multi_cell`` of ``width`` mm (0: the page's),
    left-aligned, with a gap after it. CJK text needs the WenQuanYi font."""
    from fpdf import FPDF

    document = FPDF()
    document.set_creation_date(DATE)  # the same bytes every run
    if any(ord(c) > 0x2000 for page in pages for p in page for c in p):
        document.add_font("wqy", fname=str(FONT))
        document.set_font("wqy", size=12)
    else:
        document.set_font("helvetica", size=12)
    if password:
        document.set_encryption(owner_password="owner", user_password=password)
    for paragraphs in pages:
        document.add_page()
        for paragraph in paragraphs:
            document.multi_cell(width, 8, paragraph, align="L", new_x="LMARGIN", new_y="NEXT")
            document.ln(6)
    document.output(str(path))
    return path


def scanned_pdf(path: Path) -> Path:
    """A page holding only a picture (of text, say): no text layer."""
    from fpdf import FPDF
    from PIL import Image

    document = FPDF()
    document.set_creation_date(DATE)
    document.add_page()
    document.image(Image.new("L", (200, 100), color=200), x=10, y=10, w=100)
    document.output(str(path))
    return path


def docx(path: Path) -> Path:
    """A Word report: a title, headings of two levels, a paragraph promoted by its outline level,
    body text and a table with a merged cell."""
    import docx as python_docx
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    document = python_docx.Document()
    document.add_heading("年度报告", 0)  # the Title style: text, no location
    document.add_paragraph("前言：本报告总结全年工作。")
    document.add_heading("第一章 总则", 1)
    document.add_paragraph("公司全年营收增长了百分之十二。")
    document.add_heading("背景", 2)
    document.add_paragraph("市场需求持续上升。")
    outline = document.add_paragraph("第二章 展望")  # body style, outline level 1 (0 in the file)
    level = OxmlElement("w:outlineLvl")
    level.set(qn("w:val"), "0")
    outline._p.get_or_add_pPr().append(level)
    table = document.add_table(rows=2, cols=3)
    table.cell(0, 0).merge(table.cell(0, 1)).text = "季度"
    table.cell(0, 2).text = "营收"
    for col, text in enumerate(["一季度", "二季度", "120万"]):
        table.cell(1, col).text = text
    document.add_paragraph("明年计划开拓海外市场。")
    document.save(str(path))
    return path


CONTAINER = """<?xml version="1.0"?>
<container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:container">
  <rootfiles><rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/></rootfiles>
</container>"""


def chapter(title: str, body: str) -> str:
    return (f'<?xml version="1.0" encoding="utf-8"?><html xmlns="http://www.w3.org/1999/xhtml">'
            f"<head><title>{title}</title></head><body>{body}</body></html>")


def epub(path: Path, chapters: dict[str, str], toc: dict[str, str], *, nav: bool = True,
         encrypted: list[str] = ()) -> Path:
    """An EPUB of XHTML ``chapters`` (file name → page, in spine order) with a table of contents
    (file name → title): EPUB 3 nav, or EPUB 2 NCX when ``nav`` is False."""
    items = "".join(f'<item id="c{i}" href="text/{name}" media-type="application/xhtml+xml"/>'
                    for i, name in enumerate(chapters))
    spine = "".join(f'<itemref idref="c{i}"/>' for i in range(len(chapters)))
    if nav:
        items += '<item id="nav" href="nav.xhtml" media-type="application/xhtml+xml" properties="nav"/>'
        spine = '<itemref idref="nav"/>' + spine
        links = "".join(f'<li><a href="text/{name}#top">{title}</a></li>' for name, title in toc.items())
        toc_file = ("nav.xhtml", ('<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml" '
                                  'xmlns:epub="http://www.idpf.org/2007/ops"><body><nav epub:type="toc">'
                                  f"<h1>目录</h1><ol>{links}</ol></nav></body></html>"))
        spine_open = "<spine>"
    else:
        items += '<item id="ncx" href="toc.ncx" media-type="application/x-dtbncx+xml"/>'
        points = "".join(f'<navPoint id="p{i}"><navLabel><text>{title}</text></navLabel>'
                         f'<content src="text/{name}"/></navPoint>' for i, (name, title) in enumerate(toc.items()))
        toc_file = ("toc.ncx", ('<?xml version="1.0"?><ncx xmlns="http://www.daisy.org/z3986/2005/ncx/">'
                                f"<navMap>{points}</navMap></ncx>"))
        spine_open = '<spine toc="ncx">'
    opf = ('<?xml version="1.0"?><package xmlns="http://www.idpf.org/2007/opf" version="3.0">'
           f"<manifest>{items}</manifest>{spine_open}{spine}</spine></package>")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as book:
        book.writestr(zipfile.ZipInfo("mimetype"), "application/epub+zip")
        book.writestr("META-INF/container.xml", CONTAINER)
        book.writestr("OEBPS/content.opf", opf)
        book.writestr(f"OEBPS/{toc_file[0]}", toc_file[1])
        for name, page in chapters.items():
            book.writestr(f"OEBPS/text/{name}", page)
        if encrypted:
            refs = "".join(f'<EncryptedData xmlns="http://www.w3.org/2001/04/xmlenc#"><CipherData>'
                           f'<CipherReference URI="{uri}"/></CipherData></EncryptedData>' for uri in encrypted)
            book.writestr("META-INF/encryption.xml",
                          f'<encryption xmlns="urn:oasis:names:tc:opendocument:xmlns:container">{refs}</encryption>')
    return path


def zip_bomb(path: Path, member: str, unpacked: int) -> Path:
    """A zip whose one member is ``unpacked`` zero bytes: deflate packs them about 1,000 to 1."""
    chunk = bytes(2**20)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as bomb, bomb.open(member, "w", force_zip64=True) as out:
        for _ in range(unpacked // len(chunk)):
            out.write(chunk)
    return path


def zip_of(members: dict[str, bytes]) -> bytes:
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return data.getvalue()
