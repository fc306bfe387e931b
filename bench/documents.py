"""regflow documents benchmark: what rendering and signing one official document costs.

A rectification notice (the commonest document a step issues) rendered with the common-character cut of the CJK
font and with the full font (a party's name with a character outside GB 2312 takes the full font:
``engine/supervision/document_font.py``), then signed with a demo agency key (PAdES, pyHanko). Each measured
``--rounds`` times after one warm-up; median and p95 in ms are printed, never asserted, with the load average
(the machine is shared).

    .venv/bin/python bench/documents.py
    .venv/bin/python bench/documents.py --rounds 50
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.supervision import document_font, signing  # noqa: E402
from engine.supervision.document_render import prepare_fields, render_pdf  # noqa: E402

ISSUED = datetime(2026, 12, 7, 2, 0, tzinfo=timezone.utc)


def fields(entity_name: str) -> dict:
    return prepare_fields("rectification_notice", {"findings": ["[1101 1] 未按规定明码标价", "[1102 2] 未公示营业执照"],
                                                   "legal_basis": "《价格法》第十三条", "deadline_days": 10},
                          number="郑市监金水所责改〔2026〕1号", agency_name="郑州市市场监督管理局金水市场监管所",
                          entity_name=entity_name, uscc="91410105MA46R2KX1B", issued_at=ISSUED)


def timed(fn, rounds: int) -> tuple[float, float, object]:
    out = fn()  # warm-up: imports, the font's cmap
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        out = fn()
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(len(times) * 0.95))], out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} · common cut: {document_font.common_font() or 'missing'}")
    common = fields("郑州市金水区示例餐饮有限公司")
    rare = fields("郑州市金水区堃䶮餐饮有限公司")
    med, p95, pdf = timed(lambda: render_pdf("rectification_notice", common, access_code="ABCD-EFGH"), args.rounds)
    print(f"render, common cut   median {med:7.1f} ms  p95 {p95:7.1f} ms  ({len(pdf):,} bytes)")
    med, p95, rare_pdf = timed(lambda: render_pdf("rectification_notice", rare, access_code="ABCD-EFGH"), args.rounds)
    print(f"render, full font    median {med:7.1f} ms  p95 {p95:7.1f} ms  ({len(rare_pdf):,} bytes)")
    with tempfile.TemporaryDirectory() as keys:
        signing.ensure_demo_keys(keys, [("郑市监金水所", "郑州市市场监督管理局金水市场监管所")])
        signer = signing.load_signer(keys, "郑市监金水所")
        med, p95, _ = timed(lambda: signer.sign(pdf, reason="bench"), args.rounds)
    print(f"sign (PAdES)         median {med:7.1f} ms  p95 {p95:7.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
