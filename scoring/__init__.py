"""Risk scoring: synthetic registry with a known ground truth, calibrated model, classes A–D with reasons.

Kept free of imports so that ``import scoring`` stays cheap; see ``scoring/README.md``.
"""
