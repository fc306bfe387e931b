"""The common-character cut of the CJK font (engine/supervision/document_font.py): documents whose every character
it holds render with it, any other with the full font, and both read back exactly; a stale or missing cut falls
back to the full font."""
from __future__ import annotations

import json
import shutil
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import pytest

from engine.supervision import document_font
from engine.supervision.document_render import prepare_fields, render_pdf
from tests.conftest import IN_CI

ISSUED = datetime(2026, 12, 7, 2, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def cut() -> Path:
    """The cut ./test makes (bin/pdf-deps); outside CI a missing one skips, in CI it fails."""
    path = document_font.common_font()
    if path is None:
        msg = "the common font cut is missing: bin/pdf-deps makes it (python -m engine.supervision.document_font)"
        if IN_CI:
            pytest.fail(msg)
        pytest.skip(msg)
    return Path(path)


def pdf_text(pdf: bytes, tmp_path: Path) -> str:
    if shutil.which("pdftotext") is None and not IN_CI:
        pytest.skip("pdftotext missing: poppler-utils (bin/pdf-deps)")
    path = tmp_path / "doc.pdf"
    path.write_bytes(pdf)
    return subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True).stdout


def notice(entity_name: str) -> dict:
    return prepare_fields("rectification_notice", {"findings": ["未公示营业执照"], "deadline_days": 10},
                          number="郑市监责改〔2026〕1号", agency_name="郑州市市场监督管理局",
                          entity_name=entity_name, uscc="91410100MA00000000", issued_at=ISSUED)


def test_the_cut_holds_gb2312_and_every_template_character():
    chars = document_font.common_characters()
    assert len(chars) > 7500
    for text in ("郑州市市场监督管理局", "责令改正通知书", "陈述申辩", "ＡＢＣ（）", "No. 12"):
        assert all(ord(c) in chars for c in text), text
    assert ord("䶮") not in chars and ord("堃") not in chars  # outside GB 2312


def test_common_text_takes_the_cut_and_a_rare_character_the_full_font(cut):
    assert document_font.font_for("郑州市某某餐饮有限公司 91410100MA00000000") == (str(cut), 0)
    assert document_font.font_for("郑州市䶮记餐饮有限公司") == document_font.full_font()
    assert document_font.font_for("𠀀") == document_font.full_font()


def test_both_fonts_render_text_that_reads_back(cut, tmp_path):
    common = render_pdf("rectification_notice", notice("郑州市某某餐饮有限公司"), access_code="ABCD-EFGH")
    rare = render_pdf("rectification_notice", notice("郑州市堃䶮餐饮有限公司"), access_code="ABCD-EFGH")
    common_text, rare_text = pdf_text(common, tmp_path), pdf_text(rare, tmp_path)
    assert "当事人：郑州市某某餐饮有限公司" in common_text and "ABCD-EFGH" in common_text
    assert "当事人：郑州市堃䶮餐饮有限公司" in rare_text and "ABCD-EFGH" in rare_text
    for text in (common_text, rare_text):
        assert "责令改正通知书" in text and "未公示营业执照" in text and "10个工作日" in text
    assert common.startswith(b"%PDF") and rare.startswith(b"%PDF")


def test_a_stale_or_missing_cut_is_not_used(cut, tmp_path):
    folder = tmp_path / "fonts"
    folder.mkdir()
    shutil.copy(cut, folder / document_font.COMMON_NAME)
    stamp = cut.parent / (document_font.COMMON_NAME + ".json")
    shutil.copy(stamp, folder / stamp.name)
    assert document_font.font_for("某某公司", folder) == (str(folder / document_font.COMMON_NAME), 0)
    assert document_font.build_common(folder) == (str(folder / document_font.COMMON_NAME), False)  # up to date
    old = json.loads(stamp.read_text())
    (folder / stamp.name).write_text(json.dumps({**old, "charset": old["charset"] - 1}))  # an older character set
    assert document_font.common_font(folder) is None
    assert document_font.font_for("某某公司", folder) == document_font.full_font()
    (folder / stamp.name).unlink()
    assert document_font.common_font(folder) is None
    assert document_font.common_font(tmp_path / "nowhere") is None
