"""The CJK font official documents are rendered with, and a smaller cut of it that makes rendering fast.

Debian's Noto Sans CJK SC (``fonts-noto-cjk``) holds 65,000 glyphs; fpdf2 parses the whole font and fontTools
subsets it again for every document, which took ~0.4 s per PDF — most of the cost of issuing a document inside a
workflow step. :func:`build_common` cuts, once per installation, a font of the same design holding only the
characters of GB 2312 (6,763 hanzi and its symbols), ASCII and Latin-1, the CJK and full-width punctuation and
every character of the document templates: ~8,000 glyphs, 3.5 MB, rendered in ~0.1 s. :func:`font_for` picks it
for a document whose every character it holds, and the full font otherwise — a party's name with a rare character
(堃, 䶮, 𠀀) still renders exactly, only slower; nothing is ever dropped or replaced.

The cut is written by ``bin/pdf-deps`` (run by ``./run`` and ``./test``) with
``python -m engine.supervision.document_font`` into the Python environment's ``share/regflow/fonts``, beside a
stamp of the font it was cut from; a missing or stale cut only means the full font is used.
"""
from __future__ import annotations

import json
import os
import sys
from functools import lru_cache
from pathlib import Path

from engine.errors import InvalidInput

#: (font file, index in the collection): the first that exists is used
FONTS = (("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc", 2),
         ("/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc", 2),
         ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", 0),
         ("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc", 0))
COMMON_DIR = Path(sys.prefix) / "share" / "regflow" / "fonts"
COMMON_NAME = "cjk-common.otf"
#: bumped when the character set below changes: an older cut is then stale
CHARSET_VERSION = 1


def full_font() -> tuple[str, int]:
    for path, index in FONTS:
        if Path(path).is_file():
            return path, index
    raise InvalidInput("no CJK font to render documents with: install Debian's fonts-noto-cjk (bin/pdf-deps)")


def _ranges(*spans: tuple[int, int]) -> set[int]:
    return {c for lo, hi in spans for c in range(lo, hi + 1)}


def common_characters() -> set[int]:
    """GB 2312 (every row), ASCII, Latin-1, general punctuation, CJK symbols and full-width forms, and every
    character the document templates print."""
    from .document_models import DOCUMENT_KINDS  # noqa: PLC0415  (only when cutting the font)
    from .document_templates import TEMPLATES  # noqa: PLC0415

    chars = _ranges((0x20, 0x7E), (0xA0, 0xFF), (0x2000, 0x206F), (0x2100, 0x214F), (0x2460, 0x24FF),
                    (0x3000, 0x303F), (0xFF00, 0xFFEF))
    for high in range(0xA1, 0xF8):
        for low in range(0xA1, 0xFF):
            try:
                chars.add(ord(bytes((high, low)).decode("gb2312")))
            except UnicodeDecodeError:
                continue
    texts = [t[0] for t in DOCUMENT_KINDS.values()]
    for template in TEMPLATES.values():
        texts += [template.notice, *(row.label for row in template.rows)]
    chars |= {ord(c) for text in texts for c in text}
    return chars


def _stamp(source: str, index: int) -> dict:
    st = os.stat(source)
    return {"source": source, "index": index, "size": st.st_size, "mtime": int(st.st_mtime),
            "charset": CHARSET_VERSION}


def _stamp_path(folder: Path) -> Path:
    return folder / (COMMON_NAME + ".json")


def common_font(folder: Path = COMMON_DIR) -> str | None:
    """The cut's path when it exists and was cut from today's full font with today's character set."""
    path, stamp = folder / COMMON_NAME, _stamp_path(folder)
    try:
        source, index = full_font()
        fresh = path.is_file() and json.loads(stamp.read_text()) == _stamp(source, index)
    except (OSError, ValueError, InvalidInput):
        return None
    return str(path) if fresh else None


def build_common(folder: Path = COMMON_DIR, *, force: bool = False) -> tuple[str, bool]:
    """Cut the common font into ``folder`` unless a fresh cut is there; (its path, whether it was cut now).
    Written to a temporary name and renamed, so a reader never sees half a font."""
    from fontTools import subset  # noqa: PLC0415  (cutting only)
    from fontTools.ttLib import TTFont  # noqa: PLC0415

    existing = common_font(folder)
    if existing and not force:
        return existing, False
    source, index = full_font()
    font = TTFont(source, fontNumber=index)
    options = subset.Options()
    options.layout_features = ["*"]
    options.name_IDs = ["*"]
    options.notdef_outline = True
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=common_characters())
    subsetter.subset(font)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / COMMON_NAME
    partial = folder / f".{COMMON_NAME}.{os.getpid()}"
    font.save(str(partial))
    os.replace(partial, target)
    _stamp_path(folder).write_text(json.dumps(_stamp(source, index)))
    _covered.cache_clear()
    return str(target), True


@lru_cache(maxsize=4)
def _covered(path: str, mtime: float) -> frozenset[int]:
    from fontTools.ttLib import TTFont  # noqa: PLC0415

    font = TTFont(path, lazy=True)
    try:
        return frozenset(font.getBestCmap())
    finally:
        font.close()


def font_for(text: str, folder: Path = COMMON_DIR) -> tuple[str, int]:
    """(font file, collection index) to render ``text`` with: the common cut when it holds every character of
    ``text``, else the full font."""
    path = common_font(folder)
    if path is not None:
        covered = _covered(path, os.stat(path).st_mtime)
        if all(ord(c) in covered for c in text if not c.isspace()):
            return path, 0
    return full_font()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    path, made = build_common(force="--force" in args)
    print(f"document font: {path} ({'cut now' if made else 'up to date'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
