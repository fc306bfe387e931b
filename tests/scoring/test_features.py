import numpy as np
import pytest

from scoring.errors import InvalidFactors
from scoring.factors import MODEL_INPUTS
from scoring.features import COL, frame_to_matrix


def _frame(region, n=5):
    return {k: region.entities[k][:n].copy() for k in MODEL_INPUTS}


def test_codes_and_district_imputation(region):
    f = _frame(region)
    f["district"] = f["district"].astype(object)
    f["district"][1] = "110105"  # Beijing: outside the training region
    X, valid, errors = frame_to_matrix(f)
    assert valid.all() and not errors
    assert X[1, COL["district"]] == -1
    assert X[0, COL["industry_section"]] >= 0


@pytest.mark.parametrize("field, value", [("industry_section", "FF"), ("industry_section", ""),
                                          ("industry_section", "f"), ("industry_section", None),
                                          ("entity_type", "llc "), ("district", None),
                                          ("employee_count", 2.5), ("abnormal_list_ever", 2),
                                          ("subscribed_capital", float("inf")), ("shared_address_count", 0),
                                          ("years_in_business", "ten")])
def test_invalid_values(region, field, value):
    f = _frame(region)
    f[field] = f[field].astype(object)
    f[field][3] = value
    with pytest.raises(InvalidFactors) as exc:
        frame_to_matrix(f, ids=[101, 102, 103, 104, 105])
    assert exc.value.entity == 104 and exc.value.field == field
    X, valid, errors = frame_to_matrix(f, ids=[101, 102, 103, 104, 105], strict=False)
    assert valid.tolist() == [True, True, True, False, True]
    assert len(errors) == 1 and errors[0].entity == 104


def test_missing_column(region):
    f = _frame(region)
    del f["penalties_3y"]
    with pytest.raises(InvalidFactors, match="penalties_3y=None: column missing"):
        frame_to_matrix(f)


def test_plain_lists_accepted(region):
    f = {k: list(v) for k, v in _frame(region).items()}
    X, valid, _ = frame_to_matrix(f)
    X2, _, _ = frame_to_matrix(_frame(region))
    assert valid.all() and np.array_equal(X, X2)
