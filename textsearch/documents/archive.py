"""Open a zip-based document (DOCX, EPUB) only when unpacking it is safe.

A zip bomb posing as a Word file or a book declares members that unpack to gigabytes. Before a
byte is decompressed, the sizes the zip's central directory declares are checked: the total, the
ratio to the file's own size, and the number of members. Python's zipfile never unpacks a member
past its declared size (a member that lies about it fails its CRC check instead), so the
declared sizes bound the work."""

from __future__ import annotations

import zipfile
from pathlib import Path

from ..errors import DocumentReadError

MAX_UNZIPPED = 200 * 2**20  # bytes all members may unpack to together
MAX_RATIO = 100  # unpacked / packed; real Word files and books stay far below (about 3 to 10)
RATIO_FLOOR = 20 * 2**20  # the ratio is checked only past this many unpacked bytes
MAX_MEMBERS = 10_000


def open_zip(path: Path, kind: str, *, max_unzipped: int = MAX_UNZIPPED, max_ratio: float = MAX_RATIO) -> zipfile.ZipFile:
    """``path`` as an open ZipFile, or DocumentReadError when it is no zip or would unpack to too
    much. ``kind`` names the format in the message ("Word file", "EPUB")."""
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        raise DocumentReadError(f"not a valid {kind} (a damaged or truncated zip: {exc})") from exc
    try:
        _check(archive, path.stat().st_size, kind, max_unzipped, max_ratio)
    except BaseException:
        archive.close()
        raise
    return archive


def _check(archive: zipfile.ZipFile, packed: int, kind: str, max_unzipped: int, max_ratio: float) -> None:
    members = archive.infolist()
    if len(members) > MAX_MEMBERS:
        raise DocumentReadError(f"{kind} holds {len(members):,} files (more than {MAX_MEMBERS:,}): not read")
    unpacked = sum(m.file_size for m in members)
    if unpacked > max_unzipped:
        raise DocumentReadError(
            f"{kind} would unpack to {unpacked:,} bytes, over the {max_unzipped:,}-byte limit "
            "(a zip bomb?): not read"
        )
    if unpacked > RATIO_FLOOR and unpacked > max_ratio * max(packed, 1):
        raise DocumentReadError(
            f"{kind} would unpack to {unpacked / max(packed, 1):,.0f} times its size (a zip bomb?): not read"
        )
