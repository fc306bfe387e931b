"""Synthetic entity registry and inspection history with a known ground truth. **Synthetic data only.**

No real registry ships with regflow, so the risk model is developed and judged on a simulated region whose
true violation probability is known exactly. Everything is vectorised numpy and reproducible from one seed.

Entities
--------
Each entity has two hidden traits, *size* ``S ~ N(0,1)`` and *laxity* ``Z ~ N(0,1)``, that only shape the
observed factors (they create realistic correlations: laxity raises late reports, penalties, listings,
complaints, registration changes, shared addresses and bad links; size raises capital, staff and complaints).
Neither enters the outcome directly. Marginals (targets, checked in the tests):

==========================  ===========================================================================
factor                      generator
==========================  ===========================================================================
years_in_business           split lognormal, median 4, sd(log) 1.32 below / 0.75 above → 30 % under 2 years
subscribed_capital (¥10k)   lognormal, median 100, sd(log) 1.6, 0.5·S; 40 % snapped to round amounts
employee_count              zero-inflated negative binomial, ~45 % zero, mean ~12
industry_section            GB/T 4754 sections, wholesale/retail (F) ~38 %
entity_type                 single-shareholder LLC most common (~44 %)
annual_report_late_3y       Binomial(min(3, years), sigmoid(-3.2 + Z - 0.3 S)) → ~88 % zero
penalties_3y                Poisson(0.10 · lognormal(Z) · min(years, 3)/3) → mean ~0.07
abnormal_list_ever          ~10 %, listing date uniform over the entity's life
complaints_12m              Poisson–gamma (negative binomial), industry offsets → ~92 % zero
reg_changes_24m             Poisson–gamma, mean ~0.3
shared_address_count        1, or 1 + heavy-tailed (Lomax) count for ~15 %
linked_bad_entities         Poisson–gamma, ~95 % zero
==========================  ===========================================================================

Ground truth (probit link, so the integral is exact)
---------------------------------------------------
For entity *i* at a draw date with factors ``x`` (as of that date)::

    eta(x) = b0 + scale * h(x),   h(x) = sum_j f_j(x_j) + a_industry + u_district + g(x)
    V      = 1{ eta(x) + sigma * eps_i + e > 0 },   eps_i ~ N(0,1) per entity (persistent), e ~ N(0,1) per visit
    found  = V * Bernoulli(detection)                  (per-visit detection 0.85 < 1)

Hidden *management quality* is ``scale * g(x) + sigma * eps_i``: ``g`` is its part explained by observed
factors (no insured staff, late annual reports, complaints) and ``eps_i`` the
independent part nobody observes (drawn independently of every factor, persistent across campaigns).
Integrating ``eps_i`` and ``e`` out is exact (a normal mixed into a probit stays a probit)::

    P(V = 1 | x)     = Phi( eta(x) / sqrt(1 + sigma**2) )
    P(found = 1 | x) = detection * Phi( eta(x) / sqrt(1 + sigma**2) )          # bayes_probability()

That is the Bayes-optimal score from observed data: ``bayes_auc`` and ``oracle_precision_at_k`` are its AUC
and precision@k on the same holdout labels. ``scale = 2.5`` with ``sigma = 1.0`` puts ``bayes_auc`` near
0.82 on the registry (sigma = 0.5 would give ~0.86, 0.7 ~0.85), and ``b0 = -3.14`` gives a
random-inspection detection rate near 15 % (10–18 % wanted). The shapes ``f_j`` (multiplied by ``scale``):

* years: ``0.55 exp(-y/1.5) - 0.012 min(y, 20)`` (high in years 0–2, then falls)
* capital: ``0.13 (log10(c) - 2.1)**2`` (U-shape: tiny or inflated)
* employees: ``0.25 [n = 0] - 0.05 log1p(n)``
* late reports ``0.22 n``; penalties ``0.55 log2(1 + n)``; ever abnormal ``0.25``; complaints
  ``0.30 log1p(n)``; registration changes ``0.12 min(n, 5)``; shared address ``0.18 log1p(max(n - 3, 0))``;
  linked listed entities ``0.25 log1p(n)``
* industry offsets ``INDUSTRY_OFFSET`` plus a seeded N(0, 0.05) random effect; entity-type offsets
  ``TYPE_OFFSET``; district random effect N(0, 0.12) (seeded)
* ``g(x) = 0.15 [employees = 0] + 0.12 late + 0.15 log1p(complaints)``

Inspection history (time-aware)
-------------------------------
Six semi-annual campaigns before ``as_of`` (2025-01-01). At each draw date the factors are recomputed *as of
that date* (age, listings dated before it; counts redrawn from each entity's persistent rates), and only
entities registered and not yet closed are eligible. Each campaign draws ``draw_rate`` of the eligible
entities: ``control_share`` of them by simple random sampling (the control stratum), the rest by Poisson
sampling with probability proportional to a legacy rule score (penalties, listings, complaints, late
reports, youth). Every record carries its stratum and inclusion probability, so selection is on observed
factors only (ignorable given ``x``) and can be undone by inverse-probability weights.
"""
from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timezone

import numpy as np
from scipy.special import expit, ndtr

from scoring.factors import CATEGORIES, DISTRICTS, ENTITY_TYPES, INDUSTRY_SECTIONS
from scoring.uscc import generate_usccs

INDUSTRY_SHARE = {
    "A": 0.030, "B": 0.002, "C": 0.090, "D": 0.003, "E": 0.045, "F": 0.380, "G": 0.030, "H": 0.060,
    "I": 0.070, "J": 0.005, "K": 0.020, "L": 0.110, "M": 0.055, "N": 0.005, "O": 0.055, "P": 0.010,
    "Q": 0.010, "R": 0.020,
}
#: Structural industry offsets on the probit scale (food service, health/drugs, manufacturing, online higher).
INDUSTRY_OFFSET = {
    "A": -0.05, "B": 0.10, "C": 0.15, "D": -0.15, "E": 0.05, "F": 0.12, "G": 0.0, "H": 0.30, "I": 0.10,
    "J": -0.10, "K": -0.05, "L": 0.0, "M": -0.10, "N": -0.10, "O": 0.08, "P": 0.0, "Q": 0.25, "R": 0.05,
}
#: Complaint-rate offsets (log scale): consumer-facing sections receive more complaints.
INDUSTRY_COMPLAINTS = {"F": 0.5, "H": 0.9, "O": 0.6, "P": 0.7, "Q": 0.6, "R": 0.5, "I": 0.3, "K": 0.4}
TYPE_SHARE = {"llc_sole": 0.44, "llc": 0.30, "joint_stock": 0.03, "sole_proprietorship": 0.09,
              "partnership": 0.04, "branch": 0.08, "farmer_coop": 0.02}
TYPE_OFFSET = {"llc_sole": 0.10, "llc": 0.0, "joint_stock": -0.15, "sole_proprietorship": 0.12,
               "partnership": 0.05, "branch": -0.05, "farmer_coop": 0.05}
DISTRICT_SHARE = np.array([0.13, 0.10, 0.08, 0.20, 0.02, 0.05, 0.07, 0.06, 0.07, 0.06, 0.10, 0.06])
ROUND_CAPITAL = np.array([1, 3, 5, 10, 20, 30, 50, 100, 200, 300, 500, 1000, 2000, 3000, 5000, 10000], float)


@dataclass(frozen=True)
class WorldParams:
    """The ground-truth knobs. Changing any of them changes the synthetic world (record them with a model)."""

    as_of: date = date(2025, 1, 1)
    b0: float = -3.14
    scale: float = 2.5  # multiplies every observed effect h(x) (shapes below); sets the signal strength
    sigma: float = 1.0  # sd of the unobserved part of management quality (probit scale)
    detection: float = 0.85  # per-visit probability that an existing violation is found
    campaigns: tuple[date, ...] = (date(2022, 3, 15), date(2022, 9, 15), date(2023, 3, 15),
                                   date(2023, 9, 15), date(2024, 3, 15), date(2024, 9, 15))
    draw_rate: float = 0.12  # share of eligible entities inspected per campaign
    control_share: float = 0.15  # share of each campaign's draws that is pure random

    def to_json(self) -> dict:
        d = asdict(self)
        d["as_of"] = self.as_of.isoformat()
        d["campaigns"] = [c.isoformat() for c in self.campaigns]
        return d


@dataclass
class SyntheticRegion:
    """A generated region: the entity registry (current snapshot), the inspection history and the truth."""

    seed: int
    params: WorldParams
    entities: dict[str, np.ndarray]  # column -> array; factors as of params.as_of
    history: dict[str, np.ndarray]  # one row per inspection; factors as of the draw date
    industry_effect: dict[str, float]
    district_effect: dict[str, float]
    latent: dict[str, np.ndarray] = field(repr=False)

    @property
    def n(self) -> int:
        return len(self.entities["id"])

    def bayes_probability(self, frame) -> np.ndarray:
        """True P(inspection finds a problem | observed factors) for rows of ``frame`` (Bayes-optimal score)."""
        eta = true_index(frame, self.params, self.industry_effect, self.district_effect)
        return self.params.detection * ndtr(eta / np.sqrt(1.0 + self.params.sigma**2))

    def snapshot_hash(self) -> str:
        h = hashlib.sha256()
        for k in sorted(self.entities):
            h.update(k.encode())
            h.update(np.ascontiguousarray(self.entities[k]).tobytes())
        for k in sorted(self.history):
            h.update(k.encode())
            h.update(np.ascontiguousarray(self.history[k]).tobytes())
        return h.hexdigest()


def true_index(frame, params: WorldParams, industry_effect: dict, district_effect: dict) -> np.ndarray:
    """``eta(x)`` of the module docstring, without the hidden noise."""
    y = np.asarray(frame["years_in_business"], float)
    cap = np.asarray(frame["subscribed_capital"], float)
    emp = np.asarray(frame["employee_count"], float)
    late = np.asarray(frame["annual_report_late_3y"], float)
    pen = np.asarray(frame["penalties_3y"], float)
    abn = np.asarray(frame["abnormal_list_ever"], float)
    comp = np.asarray(frame["complaints_12m"], float)
    reg = np.asarray(frame["reg_changes_24m"], float)
    shared = np.asarray(frame["shared_address_count"], float)
    linked = np.asarray(frame["linked_bad_entities"], float)
    ind = _lookup(frame["industry_section"], {k: INDUSTRY_OFFSET[k] + industry_effect.get(k, 0.0)
                                              for k in INDUSTRY_OFFSET})
    typ = _lookup(frame["entity_type"], TYPE_OFFSET)
    dis = _lookup(frame["district"], district_effect)
    h = (0.55 * np.exp(-y / 1.5) - 0.012 * np.minimum(y, 20.0)
           + 0.13 * (np.log10(np.maximum(cap, 0.01)) - 2.1) ** 2
           + 0.25 * (emp == 0) - 0.05 * np.log1p(emp)
           + 0.22 * late + 0.55 * np.log2(1.0 + pen) + 0.25 * abn + 0.30 * np.log1p(comp)
           + 0.12 * np.minimum(reg, 5.0) + 0.18 * np.log1p(np.maximum(shared - 3.0, 0.0))
           + 0.25 * np.log1p(linked)
           + ind + typ + dis
           + management_quality_observed(frame))
    return params.b0 + params.scale * h


def management_quality_observed(frame) -> np.ndarray:
    """``g(x)``: the part of hidden management quality explained by staff, late reports and complaints."""
    emp = np.asarray(frame["employee_count"], float)
    late = np.asarray(frame["annual_report_late_3y"], float)
    comp = np.asarray(frame["complaints_12m"], float)
    return 0.15 * (emp == 0) + 0.12 * late + 0.15 * np.log1p(comp)


def _lookup(codes, table: dict) -> np.ndarray:
    codes = np.asarray(codes)
    if not table:
        return np.zeros(len(codes))
    keys = np.array(list(table), dtype=codes.dtype if codes.dtype.kind == "U" else "U8")
    vals = np.array(list(table.values()), float)
    order = np.argsort(keys)
    pos = np.searchsorted(keys[order], codes)
    pos = np.clip(pos, 0, len(keys) - 1)
    hit = keys[order][pos] == codes
    return np.where(hit, vals[order][pos], 0.0)


def _years_between(later: date, earlier: date) -> float:
    return (later - earlier).days / 365.25


def generate(n: int, seed: int = 0, params: WorldParams | None = None, history: bool = True) -> SyntheticRegion:
    """Generate ``n`` entities (and, if ``history``, the six past campaigns). Deterministic in ``seed``."""
    if n < 1:
        raise ValueError("n must be positive")
    params = params or WorldParams()
    ss = np.random.SeedSequence(seed)
    rng_static, rng_now, rng_names, rng_hist = (np.random.default_rng(s) for s in ss.spawn(4))
    rng = rng_static

    industries = np.array(list(INDUSTRY_SHARE))
    ind_p = np.array(list(INDUSTRY_SHARE.values()))
    industry = industries[rng.choice(len(industries), size=n, p=ind_p / ind_p.sum())]
    districts = np.array(list(DISTRICTS))
    district = districts[rng.choice(len(districts), size=n, p=DISTRICT_SHARE / DISTRICT_SHARE.sum())]
    types = np.array(list(TYPE_SHARE))
    typ_p = np.array(list(TYPE_SHARE.values()))
    entity_type = types[rng.choice(len(types), size=n, p=typ_p / typ_p.sum())]
    industry_effect = dict(zip(CATEGORIES["industry_section"], rng.normal(0, 0.05, len(INDUSTRY_SECTIONS)).round(4)))
    district_effect = dict(zip(CATEGORIES["district"], rng.normal(0, 0.12, len(DISTRICTS)).round(4)))

    S = rng.standard_normal(n)
    Z = rng.standard_normal(n)
    eps = rng.standard_normal(n)  # hidden management-quality noise, never exposed
    zy = rng.standard_normal(n)  # split lognormal: median 4, 30 % under 2, a thinner upper tail
    years_now = np.clip(4.0 * np.exp(zy * np.where(zy < 0, 1.32, 0.75)), 1 / 365.25, 70.0)

    log_cap = np.log(100.0) + 1.6 * (0.5 * S + np.sqrt(0.75) * rng.standard_normal(n))
    cap = np.exp(log_cap)
    snap = rng.random(n) < 0.40
    nearest = np.abs(np.log(ROUND_CAPITAL)[None, :] - log_cap[snap, None]).argmin(axis=1)
    cap[snap] = ROUND_CAPITAL[nearest]
    cap = np.clip(np.round(cap, 2), 0.1, 5e6)

    p_zero = expit(-0.35 - 1.1 * S + 0.6 * np.isin(entity_type, ["sole_proprietorship", "farmer_coop"]))
    mu = np.exp(2.55 + 0.7 * S)
    r_nb = 1.0
    emp = rng.negative_binomial(r_nb, r_nb / (r_nb + mu))
    emp = np.where(rng.random(n) < p_zero, 0, np.maximum(emp, 1))

    r_late = expit(-3.2 + 1.0 * Z - 0.3 * S)
    lam_pen = 0.10 * np.exp(0.9 * Z - 0.405)
    ever = rng.random(n) < expit(-2.55 + 0.9 * Z - 0.3 * S)
    listed_ago = rng.random(n) * years_now  # years before as_of when first listed
    comp_off = _lookup(industry, INDUSTRY_COMPLAINTS)
    lam_comp = np.exp(-2.85 + 0.7 * Z + 0.35 * S + comp_off) * rng.gamma(0.4, 1 / 0.4, n)
    lam_reg = 0.3 * np.exp(0.5 * Z - 0.125) * rng.gamma(2.0, 0.5, n)
    has_shared = rng.random(n) < expit(-1.9 + 0.6 * Z)
    shared = 1 + np.where(has_shared, np.minimum(np.floor(rng.pareto(1.3, n) * 3) + 1, 2000), 0).astype(np.int64)
    linked = rng.poisson(0.06 * np.exp(1.0 * Z - 0.5) * rng.gamma(0.5, 2.0, n))

    u = rng.random(n)
    status = np.where(u < 0.92, "active", np.where(u < 0.94, "suspended", np.where(u < 0.98, "deregistered",
                                                                                   "revoked")))
    revoked_bias = (rng.random(n) < 0.02 * np.exp(Z - 0.5)) & (status == "active")
    status = np.where(revoked_bias, "revoked", status).astype("U12")
    closed_ago = np.where(status == "active", -1.0, rng.random(n) * np.minimum(years_now, 3.0))
    still_listed = ever & (rng.random(n) < 0.45)
    serious = still_listed & (listed_ago >= 3.0)
    abnormal_now = still_listed & ~serious

    latent = dict(S=S, Z=Z, eps=eps, years_now=years_now, cap=cap, emp=emp, r_late=r_late, lam_pen=lam_pen,
                  ever=ever, listed_ago=listed_ago, lam_comp=lam_comp, lam_reg=lam_reg, shared=shared,
                  linked=linked, closed_ago=closed_ago)
    static = dict(industry_section=industry, entity_type=entity_type, district=district)

    now = _snapshot(latent, static, 0.0, rng_now)
    serious = serious | (now["penalties_3y"] >= 3)  # heavier penalties also lead to the serious list
    ids = np.arange(1, n + 1, dtype=np.int64)
    category = _category_chars(entity_type)
    entities = {
        "id": ids,
        "uscc": generate_usccs(rng_names, district, category),
        "name": _names(rng_names, industry, entity_type, district),
        "status": status,
        **now,
        "abnormal_list": abnormal_now,
        "serious_list": serious,
        "factors_as_of": np.full(n, params.as_of.isoformat(), dtype="U10"),
    }
    region = SyntheticRegion(seed=seed, params=params, entities=entities, history={},
                             industry_effect=industry_effect, district_effect=district_effect, latent=latent)
    if history:
        region.history = _history(region, static, rng_hist)
    return region


def _category_chars(entity_type: np.ndarray) -> np.ndarray:
    keys = np.array(sorted(ENTITY_TYPES))
    chars = np.array([ENTITY_TYPES[k][2] for k in keys], dtype="U1")
    return chars[np.searchsorted(keys, entity_type)]


def _snapshot(latent: dict, static: dict, dt: float, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Factors as of ``dt`` years before ``as_of`` (0 = now). Counts are redrawn from persistent rates."""
    years = latent["years_now"] - dt
    y = np.maximum(years, 0.0)
    due = np.minimum(np.floor(y), 3).astype(np.int64)
    return {
        "years_in_business": np.round(years, 3),
        "subscribed_capital": latent["cap"],
        "employee_count": latent["emp"].astype(np.int64),
        "industry_section": static["industry_section"],
        "entity_type": static["entity_type"],
        "district": static["district"],
        "annual_report_late_3y": rng.binomial(due, latent["r_late"]).astype(np.int64),
        "penalties_3y": rng.poisson(latent["lam_pen"] * np.minimum(y, 3.0) / 3.0).astype(np.int64),
        "abnormal_list_ever": latent["ever"] & (latent["listed_ago"] >= dt),
        "complaints_12m": rng.poisson(latent["lam_comp"] * np.minimum(y, 1.0)).astype(np.int64),
        "reg_changes_24m": rng.poisson(latent["lam_reg"] * np.minimum(y, 2.0) / 2.0).astype(np.int64),
        "shared_address_count": latent["shared"],
        "linked_bad_entities": latent["linked"].astype(np.int64),
    }


def legacy_rule_score(frame) -> np.ndarray:
    """The rule-of-thumb weight the (synthetic) past risk-based draws used; a function of observed factors only."""
    return (1.0 + 2.0 * (np.asarray(frame["penalties_3y"]) > 0) + 1.5 * np.asarray(frame["abnormal_list_ever"])
            + 1.0 * (np.asarray(frame["complaints_12m"]) > 0) + 1.0 * (np.asarray(frame["annual_report_late_3y"]) > 0)
            + 0.5 * (np.asarray(frame["years_in_business"]) < 2.0))


def _poisson_pps(w: np.ndarray, n_target: float) -> np.ndarray:
    """Inclusion probabilities proportional to ``w`` with expected total ``n_target``, capped at 1."""
    pi = np.zeros_like(w)
    free = np.ones(len(w), bool)
    remaining = n_target
    for _ in range(20):
        pi[free] = remaining * w[free] / w[free].sum()
        over = free & (pi >= 1.0)
        if not over.any():
            break
        pi[over] = 1.0
        free &= ~over
        remaining = n_target - (~free).sum()
    return np.minimum(pi, 1.0)


def _history(region: SyntheticRegion, static: dict, rng: np.random.Generator) -> dict[str, np.ndarray]:
    p = region.params
    lat = region.latent
    cols: dict[str, list] = {}
    denom = np.sqrt(1.0 + p.sigma**2)
    for c, drawn_on in enumerate(p.campaigns):
        dt = _years_between(p.as_of, drawn_on)
        snap = _snapshot(lat, static, dt, rng)
        # registered before the draw and not closed before it (closed_ago is -1 for active entities)
        eligible = (snap["years_in_business"] > 0) & (lat["closed_ago"] < dt)
        idx = np.flatnonzero(eligible)
        n_el = len(idx)
        n_draw = p.draw_rate * n_el
        n_ctrl = int(round(p.control_share * n_draw))
        ctrl = rng.choice(idx, size=n_ctrl, replace=False)
        pi_ctrl = n_ctrl / n_el
        rest = np.setdiff1d(idx, ctrl, assume_unique=True)
        w = legacy_rule_score({k: v[rest] for k, v in snap.items()})
        pi_risk = _poisson_pps(w, n_draw - n_ctrl)
        take = rng.random(len(rest)) < pi_risk
        risk = rest[take]
        rows = np.concatenate([ctrl, risk])
        stratum = np.concatenate([np.full(len(ctrl), "control"), np.full(len(risk), "risk")]).astype("U7")
        # Overall probability of being inspected in this campaign (control first, then risk-based among the rest).
        w_all = legacy_rule_score({k: v[rows] for k, v in snap.items()})
        pi_risk_rows = np.minimum(1.0, (n_draw - n_ctrl) * w_all / w.sum())
        pi_overall = pi_ctrl + (1 - pi_ctrl) * pi_risk_rows
        sub = {k: v[rows] for k, v in snap.items()}
        eta = true_index(sub, p, region.industry_effect, region.district_effect)
        violation = (eta + p.sigma * lat["eps"][rows] + rng.standard_normal(len(rows))) > 0
        found = violation & (rng.random(len(rows)) < p.detection)
        rec = {
            "entity_id": region.entities["id"][rows],
            "campaign": np.full(len(rows), c, np.int64),
            "drawn_on": np.full(len(rows), drawn_on.isoformat(), "U10"),
            "stratum": stratum,
            "inclusion_prob": np.where(stratum == "control", pi_ctrl, pi_risk_rows),
            "pi_overall": pi_overall,
            **sub,
            "violation": violation,
            "found_problem": found,
            "bayes_p": p.detection * ndtr(eta / denom),
        }
        for k, v in rec.items():
            cols.setdefault(k, []).append(v)
    return {k: np.concatenate(v) for k, v in cols.items()}


_BRANDS = list("华瑞鑫源恒泰盛达宏兴福康金利隆昌新丰嘉禾德信永顺和美佳安润通祥裕景天成博远卓越明辉汇众诚凯")
_INDUSTRY_WORD = {
    "A": "农业", "B": "矿业", "C": "制造", "D": "能源", "E": "建设工程", "F": "商贸", "G": "物流",
    "H": "餐饮管理", "I": "网络科技", "J": "投资", "K": "置业", "L": "商务咨询", "M": "技术服务",
    "N": "环保", "O": "家政服务", "P": "教育咨询", "Q": "医疗", "R": "文化传媒",
}
_SUFFIX = {"llc_sole": "有限公司", "llc": "有限公司", "joint_stock": "股份有限公司", "sole_proprietorship": "经营部",
           "partnership": "企业（有限合伙）", "branch": "有限公司分公司", "farmer_coop": "专业合作社"}


def _names(rng: np.random.Generator, industry, entity_type, district) -> np.ndarray:
    n = len(industry)
    b = np.array(_BRANDS)
    brand = np.char.add(b[rng.integers(0, len(b), n)], b[rng.integers(0, len(b), n)])
    place = np.array([DISTRICTS[d][:2] for d in DISTRICTS])[np.searchsorted(np.array(list(DISTRICTS)), district)]
    word = np.array([_INDUSTRY_WORD[k] for k in INDUSTRY_SECTIONS])[np.searchsorted(
        np.array(list(INDUSTRY_SECTIONS)), industry)]
    suffix_keys = np.array(sorted(_SUFFIX))
    suffix = np.array([_SUFFIX[k] for k in suffix_keys])[np.searchsorted(suffix_keys, entity_type)]
    name = np.char.add(np.char.add(np.char.add("郑州", place), brand), np.char.add(word, suffix))
    return name


def as_of_datetime(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=timezone.utc)


