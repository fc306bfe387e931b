import numpy as np
import pytest

from scoring.uscc import generate_usccs, is_valid_uscc, uscc_check_digit, valid_usccs


def test_known_codes():
    # published examples with correct GB 32100 check characters
    assert is_valid_uscc("91350100M000100Y43")
    assert uscc_check_digit("91350100M000100Y4") == "3"
    assert is_valid_uscc("911100001000059750") is (uscc_check_digit("91110000100005975") == "0")


@pytest.mark.parametrize("bad", ["91350100M000100Y44", "91350100M000100Y4", "91350100M000100Y43X",
                                 "91350100m000100Y43", "91350100I000100Y43", None, 12345])
def test_invalid_codes(bad):
    assert not is_valid_uscc(bad)


def test_check_digit_rejects_bad_alphabet():
    with pytest.raises(ValueError):
        uscc_check_digit("9135010OZ000100Y4")


def test_generated_codes_valid_unique_and_vectorised_check_agrees():
    rng = np.random.default_rng(0)
    codes = generate_usccs(rng, np.array(["410105"] * 5000), np.array(["1"] * 4000 + ["3"] * 1000))
    assert len(set(codes)) == 5000
    assert all(is_valid_uscc(c) for c in codes[:500])
    assert valid_usccs(codes).all()
    assert codes[0][:8] == "91410105" and codes[-1][:2] == "93"
    broken = codes[:10].copy()
    broken[3] = broken[3][:17] + ("0" if broken[3][17] != "0" else "1")
    assert valid_usccs(broken).tolist() == [is_valid_uscc(c) for c in broken]
