"""The one masking function for public output (engine.supervision.masking), driven by a corpus of inputs and
expected outputs (tests/supervision/data/masking_corpus.yaml), and its use on a whole payload: personal keys
masked whole, verbatim keys (draw inputs, USCC) untouched, deep nesting cut short, masking idempotent."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from engine.supervision import masking

CORPUS = yaml.safe_load((Path(__file__).parent / "data" / "masking_corpus.yaml").read_text(encoding="utf-8"))


def test_corpus_is_well_formed():
    assert len(CORPUS) >= 70
    assert all(set(case) == {"in", "out"} and isinstance(case["in"], str) for case in CORPUS)
    assert len({case["in"] for case in CORPUS}) == len(CORPUS), "a case is listed twice"


@pytest.mark.parametrize("case", CORPUS, ids=[c["in"][:24] for c in CORPUS])
def test_corpus(case):
    assert masking.mask_text(case["in"]) == case["out"]
    assert masking.mask_text(case["out"]) == case["out"], "masking masked text must change nothing"


def test_no_digit_run_of_personal_data_survives_in_the_corpus():
    """Whatever the format, the middle digits of the corpus' phone, ID and card numbers are gone."""
    for needle in ("1234567", "12345678", "19900101", "87654321", "02123456", "65123456", "6512 3456"):
        leaks = [c["out"] for c in CORPUS if needle in c["out"].replace(" ", "").replace("-", "")]
        assert not leaks, (needle, leaks)


def test_untouched_text_keeps_its_characters():
    text = "抽查计划：２０２６年第四季度（2026-Q4），当事人张三"
    assert masking.mask_text(text) == "抽查计划：２０２６年第四季度（2026-Q4），当事人张*"


def test_payload():
    payload = {
        "legal_representative": "张三丰", "contact": "Zhang San", "phone": 13812345678, "email": "li@example.com",
        "handlers": ["王五", "欧阳娜娜"], "home_address": "郑州市金水区某某路12号", "id_number": "410102199001011234",
        "note": "联系人李四，电话 139-8765-4321", "seed": "13812345678", "public_value": "410102199001011234",
        "population_hash": "ab" * 32, "uscc": "914101021000000329", "fine": 5000, "flag": True, "none": None,
        "nested": {"person": "赵六", "items": ["当事人钱七"]},
    }
    out = masking.mask(payload)
    assert out["legal_representative"] == "张*丰" and out["contact"] == "Z*******n"
    assert out["phone"] == "138****5678" and out["email"] == "l***@example.com"
    assert out["handlers"] == ["王*", "欧**娜"] and out["id_number"] == "410102********1234"
    assert out["home_address"] == "郑州市金水区****" and out["note"] == "联系人李*，电话 139-****-4321"
    # the draw's inputs and the entity's code are public and must stay verifiable
    for key in ("seed", "public_value", "population_hash", "uscc"):
        assert out[key] == payload[key]
    assert (out["fine"], out["flag"], out["none"]) == (5000, True, None)
    assert out["nested"] == {"person": "赵*", "items": ["当事人钱*"]}
    assert masking.mask(out) == out


def test_personal_value_in_which_nothing_is_recognised_is_masked_whole():
    assert masking.mask_personal("6512345") == "6*****5"
    assert masking.mask_personal("A") == "*"
    assert masking.mask_personal("张*丰") == "张*丰"


def test_deep_nesting_is_cut_short():
    deep: object = "13812345678"
    for _ in range(2000):
        deep = [deep]
    out = masking.mask({"note": deep})
    depth, node = 0, out["note"]
    while isinstance(node, list):
        depth, node = depth + 1, node[0]
    assert node == masking.ELLIPSIS and depth <= masking.MAX_DEPTH
