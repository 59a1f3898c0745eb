"""EPUB → text with {"chapter": title} locations (and {"chapter", "heading"} at headings inside).

An EPUB is a zip of XHTML chapters: it is read with zipfile (size-checked first, ``archive``), its
package file (OPF) with the standard library's XML parser (expat refuses entity bombs), and each
chapter with ``html``. Chapters come in spine order; a chapter's title is its entry in the table
of contents (EPUB 3 nav or EPUB 2 NCX), else that of the chapter before it (a chapter split over
several files), else the file's first heading or <title>. ebooklib (AGPL) is not needed."""

from __future__ import annotations

import posixpath
import zipfile
from pathlib import Path
from urllib.parse import unquote
from xml.etree import ElementTree

from ..errors import DocumentEmptyError, DocumentReadError
from . import html
from .archive import open_zip
from .text import Extracted, TextBuilder, join_lines

NS = {"c": "urn:oasis:names:tc:opendocument:xmlns:container", "opf": "http://www.idpf.org/2007/opf",
      "ncx": "http://www.daisy.org/z3986/2005/ncx/", "x": "http://www.w3.org/1999/xhtml",
      "enc": "http://www.w3.org/2001/04/xmlenc#"}
CHAPTER_TYPES = {"application/xhtml+xml", "text/html"}


def read(path: Path) -> Extracted:
    """The book's chapters in reading order, each located by its title, headings inside too."""
    with open_zip(path, "EPUB") as book:
        package = _rootfile(book)
        manifest, spine, toc_id = _package(book, package)
        _refuse_drm(book, {href for href, _, _ in manifest.values()})
        titles = _toc(book, manifest, toc_id)
        builder = TextBuilder()
        chapter = ""
        for item in spine:
            href, media_type, properties = manifest.get(item, ("", "", ""))
            if media_type not in CHAPTER_TYPES or "nav" in properties.split():
                continue
            page = html.parse(_decode(_member(book, href)))
            previous, chapter = chapter, titles.get(href) or chapter or html.title(page) or posixpath.basename(href)
            if chapter != previous:
                builder.mark({"chapter": chapter})
            html.extract(page, builder, {"chapter": chapter})
    extracted = builder.build()
    if not extracted.text.strip():
        raise DocumentEmptyError("EPUB without text")
    return extracted


def _xml(book: zipfile.ZipFile, name: str) -> ElementTree.Element:
    try:
        return ElementTree.fromstring(_member(book, name))
    except ElementTree.ParseError as exc:
        raise DocumentReadError(f"EPUB with a malformed {name} ({exc})") from exc


def _member(book: zipfile.ZipFile, name: str) -> bytes:
    try:
        return book.read(name)
    except KeyError as exc:
        raise DocumentReadError(f"EPUB without its {name}") from exc


def _rootfile(book: zipfile.ZipFile) -> str:
    rootfile = _xml(book, "META-INF/container.xml").find(".//c:rootfile", NS)
    if rootfile is None or not rootfile.get("full-path"):
        raise DocumentReadError("EPUB whose container.xml names no package file")
    return str(rootfile.get("full-path"))


def _package(book: zipfile.ZipFile, package: str) -> tuple[dict[str, tuple[str, str, str]], list[str], str]:
    """(manifest id → (zip path, media type, properties), spine ids in order, the NCX's id)."""
    root = _xml(book, package)
    base = posixpath.dirname(package)
    manifest = {
        item.get("id", ""): (_join(base, item.get("href", "")), item.get("media-type", ""), item.get("properties", ""))
        for item in root.iterfind("opf:manifest/opf:item", NS)
    }
    spine = root.find("opf:spine", NS)
    if spine is None:
        raise DocumentReadError("EPUB whose package file has no spine (reading order)")
    order = [ref.get("idref", "") for ref in spine.iterfind("opf:itemref", NS)]
    return manifest, order, spine.get("toc", "")


def _toc(book: zipfile.ZipFile, manifest: dict[str, tuple[str, str, str]], toc_id: str) -> dict[str, str]:
    """Chapter file → its title in the table of contents (the first entry pointing into it)."""
    nav = next((href for href, _, props in manifest.values() if "nav" in props.split()), None)
    ncx = manifest.get(toc_id, ("", "", ""))[0] or next(
        (href for href, kind, _ in manifest.values() if kind == "application/x-dtbncx+xml"), None)
    titles: dict[str, str] = {}
    try:
        if nav:
            for link in _xml(book, nav).iterfind(".//x:nav//x:a[@href]", NS):
                label = join_lines("".join(link.itertext()).split("\n"))
                titles.setdefault(_join(posixpath.dirname(nav), link.get("href", "")), label)
        elif ncx:
            for point in _xml(book, ncx).iterfind(".//ncx:navPoint", NS):
                text, content = point.find("ncx:navLabel/ncx:text", NS), point.find("ncx:content", NS)
                if text is not None and content is not None and text.text:
                    titles.setdefault(_join(posixpath.dirname(ncx), content.get("src", "")), text.text.strip())
    except DocumentReadError:
        return {}  # a broken table of contents only loses the titles
    return {href: title for href, title in titles.items() if title}


def _refuse_drm(book: zipfile.ZipFile, content: set[str]) -> None:
    """DRM (Adobe, Readium LCP…) encrypts the chapters; font obfuscation alone is harmless."""
    if "META-INF/encryption.xml" not in book.namelist():
        return
    encrypted = {_join("", ref.get("URI", "")) for ref in _xml(book, "META-INF/encryption.xml").iterfind(
        ".//enc:CipherReference", NS)}
    if any(href in encrypted for href in content if href.endswith((".xhtml", ".html", ".htm", ".xml"))):
        raise DocumentReadError("DRM-protected EPUB (its chapters are encrypted)")


def _join(base: str, href: str) -> str:
    """A manifest or TOC href as a zip member name: relative to ``base``, unquoted, no #fragment."""
    return posixpath.normpath(posixpath.join(base, unquote(href.split("#", 1)[0]))).lstrip("/")


def _decode(data: bytes) -> str:
    """EPUB chapters are UTF-8 or UTF-16 (with a BOM) by the standard; stray bytes are replaced."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", "replace")
    return data.decode("utf-8-sig", "replace")
