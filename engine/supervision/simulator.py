"""The full-loop simulator (issue 4): a fresh registry, a trained model, the real process library on the
real engine, simulated officers who complete their tasks with valid form data, outcomes drawn from the
synthetic ground truth (``region.bayes_probability``), and a simulated clock that moves a day at a time
(timers fire through ``run_due``) until every instance has ended.

Everything is synthetic. The summary's keys are fixed by the issue (see :func:`summarise`).
"""
from __future__ import annotations

import random
import tempfile
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select

from engine.errors import InvalidInput
from engine.runtime import audit, clock
from engine.runtime.models import HumanTask, Incident, MessageSubscription, ProcessInstance
from engine.runtime.worker import run_due
from engine.supervision import calendar as cal

SH = cal.SHANGHAI
#: Monday 2 March 2026, 09:00 in China
DEFAULT_START = datetime(2026, 3, 2, 9, 0, tzinfo=SH)
EV = [{"sha256": "b" * 64, "filename": "site.jpg", "size": 4096}]
#: (user, roles, groups) of the simulated office; inspectors log in with their registry user names
OFFICE = [("planner", "officer", "planners"), ("approver", "supervisor", "approvers"),
          ("supervisor", "supervisor", "supervisors"), ("officer", "officer", "officers"),
          ("handler", "officer", "officers,case_handlers"), ("head", "supervisor", "agency_heads,supervisors")]
GROUP_USER = {"planners": "planner", "approvers": "approver", "supervisors": "supervisor", "officers": "officer",
              "case_handlers": "handler", "agency_heads": "head"}
ITEMS = [("AR-01", "年度报告公示信息检查", "amr", "documentary"), ("PRICE-01", "明码标价检查", "price", "on_site")]


@dataclass
class Options:
    entities: int = 5000
    seed: int = 7
    database_url: str | None = None
    training_entities: int = 20_000
    ratios: dict = field(default_factory=lambda: {"A": 1, "B": 4, "C": 12, "D": 30})
    control_share: float = 10
    start: datetime = DEFAULT_START
    max_days: int = 400
    #: shares of visits ending with an entity-state code, before the ground truth decides on a violation:
    #: unreachable at the address (result_6, scaled by the entity's risk), closed or liquidating (result_7),
    #: gone since the draw (result_9-12), no in-scope activity (result_F), seriously uncooperative (result_8,
    #: scaled by risk). See :class:`OutcomeMix`.
    unreachable: float = 0.02
    closed: float = 0.01
    gone: float = 0.01
    no_activity: float = 0.02
    uncooperative: float = 0.005
    #: share of entities waiting for a registered letter (result_6) that sign it on a given day: with 0.01 about
    #: a quarter sign within the 30 days, the rest stay unsigned and are put on the abnormal operations list
    letter_signed: float = 0.01
    #: what-if decision tables: each DMN file replaces the process library's file that defines the same
    #: decision ids (see :func:`library_with`), so the run routes by the designer's rules
    decision_files: tuple = ()


#: a found violation -> result code weights (DOMAIN.md §2 step 7): most problems are "A" (follow-up) or "E"
#: (corrected on the spot); publicity violations "B"/"C" come from the annual-report item; "3/4/5/G" are
#: violations for food-drug, quality, other departments and the police.
VIOLATION_WEIGHTS = {"result_A": 50, "result_E": 22, "result_B": 10, "result_C": 4, "result_3": 4, "result_4": 4,
                     "result_5": 4, "result_G": 2}
#: an entity that ceased to exist: deregistered, licence revoked, registration cancelled, moved out
GONE_WEIGHTS = {"result_9": 45, "result_10": 20, "result_11": 5, "result_12": 30}
#: mean violation probability of a drawn entity; unreachable / uncooperative shares scale with p / this
MEAN_VIOLATION_P = 0.14


@dataclass
class OutcomeMix:
    """How a simulated visit ends: every result code of ``inspection.RESULT_OUTCOMES`` can occur.

    First the entity's state (unreachable, closed, gone, no in-scope activity, uncooperative), with the
    unreachable and uncooperative shares scaled by the entity's ground-truth violation probability
    (shell companies and offenders are the ones not found or obstructive); then a violation is found with
    the ground-truth probability ``p`` (``region.bayes_probability``), its code drawn from
    ``VIOLATION_WEIGHTS``; otherwise ``result_1``."""

    unreachable: float = 0.02
    closed: float = 0.01
    gone: float = 0.01
    no_activity: float = 0.02
    uncooperative: float = 0.005

    @classmethod
    def from_options(cls, opts: "Options") -> "OutcomeMix":
        return cls(opts.unreachable, opts.closed, opts.gone, opts.no_activity, opts.uncooperative)

    def draw(self, p: float, rng: random.Random) -> str:
        risk = min(4.0, max(0.25, p / MEAN_VIOLATION_P))
        v = rng.random()
        for share, code in ((self.unreachable * risk, "result_6"), (self.closed, "result_7"),
                            (self.gone, None), (self.no_activity, "result_F"),
                            (self.uncooperative * risk, "result_8")):
            if v < share:
                return code or rng.choices(list(GONE_WEIGHTS), weights=list(GONE_WEIGHTS.values()))[0]
            v -= share
        if rng.random() < p:
            return rng.choices(list(VIOLATION_WEIGHTS), weights=list(VIOLATION_WEIGHTS.values()))[0]
        return "result_1"


class Officers:
    """Simulated people: every open task is completed with valid data on the day it appears."""

    def __init__(self, runtime, db_factory, truth: dict[str, float], rng: random.Random):
        self.runtime, self.factory, self.truth, self.rng = runtime, db_factory, truth, rng
        self.reported: set[str] = set()
        #: (message, uscc) a waiting party answered, and the day each was last rolled for (``_DAILY_ANSWERS``)
        self.answered: set[tuple[str, str]] = set()
        self.answer_rolls: dict[tuple[str, str], date] = {}
        self.letter_signed = Options.letter_signed
        self.fix_on_first: dict[str, bool] = {}
        self.mix = OutcomeMix()

    # ----------------------------------------------------------------------------- task data by BPMN id
    def data_for(self, ht: HumanTask, inst: ProcessInstance, wfdata: dict, today: date) -> dict:
        d = today.isoformat()
        bid = ht.bpmn_id
        if bid == "draft_plan":
            return wfdata["__plan__"]
        if bid == "approve":
            return {"decision": "approve", "public_random_value": wfdata["__public_value__"],
                    "public_random_source": "福利彩票双色球 (simulated)", "notice_date": d}
        if bid == "resolve_staffing":
            return {}
        if bid == "inspect":
            return self.inspection(wfdata, today)
        if bid == "review":
            problem = bool(wfdata.get("findings"))
            return {"decision": "approve", "hazard_grade_confirmed": "medium" if problem else "none",
                    "public_summary": "检查结果已审核"}
        if bid == "serve_order":
            return {"document": "rectification_order", "document_number": f"责改〔{today.year}〕{ht.id}号",
                    "method": "in_person", "served_at": clock.now().isoformat(), "recipient": "张三丰",
                    "signed": True}
        if bid == "reinspect":
            fixed = inst.business_key in self.reported or self.rng.random() < 0.5
            data = {"reinspection_date": d, "method": "on_site", "outcome": "fixed" if fixed else "not_fixed",
                    "evidence": EV}
            if not fixed:
                data["description"] = "未按期整改"
            return data
        if bid == "countersign":
            return {"agree": True}
        if bid == "extension":
            return {"received_on": d, "reason": "设备待采购", "requested_until": (today + timedelta(days=7)).isoformat(),
                    "decision": "approve", "extension_days": 5, "opinion": "同意延期一次"}
        if bid == "verify_lead":
            return {"lead_source": wfdata.get("lead_source") or "inspection", "verified_facts": "核查属实",
                    "prima_facie_evidence": True, "within_jurisdiction": True, "within_limitation": True,
                    "recommendation": "file_case", "reason": "符合立案条件"}
        if bid == "filing":
            return {"decision": "file", "case_number": f"市监立〔{today.year}〕{ht.id}号", "cause": "检查发现违法行为",
                    "filing_date": d, "handlers": [{"name": "卡罗", "cert_no": "ZF-001"},
                                                   {"name": "戴夫", "cert_no": "ZF-002"}]}
        if bid == "investigate":
            return {"investigators": [{"name": "卡罗", "cert_no": "ZF-001"}, {"name": "戴夫", "cert_no": "ZF-002"}],
                    "facts": "查明事实", "evidence": EV, "legal_review_required": False,
                    "conclusion": "penalty" if self.rng.random() < 0.5 else "minor_no_penalty"}
        if bid == "pre_notice":
            return {"notice_number": f"告字〔{today.year}〕{ht.id}号", "notice_date": d, "facts": "事实",
                    "legal_basis": "依据", "proposed_penalties": ["fine"], "proposed_fine": 5000,
                    "hearing_right": False}
        if bid == "hearing":
            return {"requested": False}
        if bid == "decide":
            penalty = wfdata.get("conclusion") == "penalty"
            data = {"decision_type": "penalty" if penalty else "minor_no_penalty", "legal_basis": "《价格法》第四十二条",
                    "decision_number": f"决定〔{today.year}〕{ht.id}号", "decision_date": d,
                    "collective_decision": False, "reasoning": "理由"}
            if penalty:
                data |= {"penalties": ["fine"], "fine_amount": 5000}
            return data
        if bid == "supervise_overdue":
            return {}
        if bid == "serve_decision":
            return {"document": "penalty_decision", "document_number": f"决定〔{today.year}〕{ht.id}号",
                    "method": "in_person", "served_at": clock.now().isoformat(), "recipient": "张三丰",
                    "signed": True}
        if bid == "execute":
            return {"status": "paid", "amount_paid": 5000, "paid_on": d}
        if bid == "close":
            return {"close_reason": "executed" if wfdata.get("decision_type") == "penalty" else "no_penalty",
                    "closed_on": d, "rectification_verified": False, "summary": "结案报告"}
        raise RuntimeError(f"the simulator does not know task {bid!r} of {inst.process_id}")

    def inspection(self, wfdata: dict, today: date) -> dict:
        """The inspection form for a result code drawn by :class:`OutcomeMix` from the ground truth."""
        from engine.supervision.inspection import RESULT_OUTCOMES

        uscc = wfdata["uscc"]
        code = self.mix.draw(self.truth.get(uscc, 0.1), self.rng)
        outcome = RESULT_OUTCOMES[code]
        clauses = wfdata["merged_checklist"]["clauses"]
        codes = [c["code"] for c in clauses]
        data = {"inspection_date": today.isoformat(), "method": wfdata.get("method") or "on_site",
                "credentials_shown": True, "recusal_requested": False, "party_signed": code != "result_8",
                "result_code": code}
        if code in ("result_6", "result_8"):
            data["contact_attempts"] = ("两次实地核查未找到，电话无人接听" if code == "result_6"
                                        else "当事人拒绝提供账簿并阻挠检查，经劝说无效")
            return data
        if outcome == "close":
            return data
        checklist = {c: {"result": "compliant"} for c in codes}
        if code == "result_1":
            return data | {"checklist": checklist}
        bad = self.rng.choice(codes)
        checklist[bad] = {"result": "non_compliant", "note": "不符合要求"}
        data["checklist"] = checklist
        if outcome == "problem":
            grade = ("high" if code == "result_G" else
                     self.rng.choices(["low", "medium", "high"], weights=[4, 5, 1])[0])
            item = next(cv["item"] for c in clauses if c["code"] == bad for cv in c["covers"])
            data["findings"] = [{"item_code": item, "clause": bad, "description": "检查发现问题",
                                 "hazard_grade": grade}]
        return data


def _decision_ids(name: str, text: str) -> set[str]:
    from lxml import etree

    from engine.runtime.parser import read_xml

    try:
        root = read_xml(text)
    except etree.XMLSyntaxError as exc:
        raise InvalidInput(f"{name}: not well-formed XML ({exc})") from None
    return {el.get("id") for el in root.iter() if isinstance(el.tag, str) and etree.QName(el).localname == "decision"
            and el.get("id")}


def library_with(library: dict[str, str], decision_files) -> dict[str, str]:
    """The process library's files with what-if decision tables swapped in: each given ``.dmn`` file takes
    the place of the library file that defines the same decision ids (every process that calls them is
    deployed with it). A file that defines a decision the library does not have is refused, naming it."""
    from engine.runtime.deploy import read_paths

    files = dict(library)
    by_decision = {d: name for name, text in library.items() if name.endswith(".dmn")
                   for d in _decision_ids(name, text)}
    for path in decision_files:
        (name, text), = read_paths([path]).items()
        if not name.endswith(".dmn"):
            raise InvalidInput(f"{path}: a what-if decision table must be a .dmn file")
        ids = _decision_ids(str(path), text)
        targets = {by_decision.get(d) for d in ids}
        if not ids or None in targets or len(targets) != 1:
            unknown = sorted(d for d in ids if d not in by_decision)
            raise InvalidInput(f"{path}: defines decision(s) {', '.join(sorted(ids)) or 'none'}"
                               + (f"; not in the process library: {', '.join(unknown)}" if unknown else
                                  "; they come from different library files")
                               + f" (library decisions: {', '.join(sorted(by_decision))})")
        (target,) = targets
        files.pop(target)
        files[target] = text
    return files


def campaign_plan(name: str, now: datetime, *, ratios: dict[str, int], control_share: int, capacity: int,
                  lookback_months: int) -> dict:
    """The ``campaign_plan`` form of a joint amr + price campaign over ``ITEMS`` in 410100, with a 90-day window
    from ``now`` (the simulator's, ``bench/loop.py``'s and the tests' campaigns)."""
    return {"name": name, "year": now.year, "lead_department": "amr", "joint_check": True,
            "joint_departments": "price",
            "items": [{"item_code": c, "item_name": n, "department": d, "method": m} for c, n, d, m in ITEMS],
            "jurisdiction": "410100", "window_start": now.date().isoformat(),
            "window_end": (now.date() + timedelta(days=90)).isoformat(),
            "ratio_a": ratios["A"], "ratio_b": ratios["B"], "ratio_c": ratios["C"], "ratio_d": ratios["D"],
            "control_share": control_share, "capacity": capacity, "lookback_months": lookback_months}


#: every class drawn in full (the launch measurements: every drawn entity is launched)
EVERY_CLASS = {"A": 100, "B": 100, "C": 100, "D": 100}


def _setup(url: str, opts: Options, runtime) -> tuple[dict, dict]:
    """Registries, users, entities with their ground truth, the model, the process library."""
    import io

    from engine.bootstrap import form_hasher
    from engine.config import PROJECT_ROOT, load_settings
    from engine.db import session_factory, transaction
    from engine.demo import DEMO_DATA, demo_inspectors_csv
    from engine.runtime.deploy import deploy, read_paths
    from engine.runtime.users import add_user
    from engine.supervision import importer
    from engine.supervision.registry_models import Inspector
    from scoring import registry, service
    from scoring.generator import generate
    from scoring.train import train_synthetic

    factory = session_factory(url)
    now = clock.now()
    with transaction(factory) as s:
        cal.seed_from_chinese_calendar(s)
        importer.import_departments(s, DEMO_DATA / "departments.csv")
        importer.import_skills(s, DEMO_DATA / "skills.csv")
        importer.import_inspectors(s, io.StringIO(demo_inspectors_csv()), today=now.date(), now=now)
        importer.import_items(s, DEMO_DATA / "items.csv", now=now)
        for name, roles, groups in OFFICE:
            add_user(s, name, f"{name}-simulated-pw", roles, groups, actor="simulator")
        for username, in s.execute(select(Inspector.username).where(Inspector.username.is_not(None))):
            add_user(s, username, f"{username}-simulated-pw", "team_leader,officer", "officers,team_leaders",
                     actor="simulator")
    result, _ = train_synthetic(opts.training_entities, seed=opts.seed)
    region = generate(opts.entities, seed=opts.seed + 1, history=False)
    truth_p = region.bayes_probability(region.entities)
    truth = {str(u): float(p) for u, p in zip(region.entities["uscc"], truth_p)}
    with transaction(factory) as s:
        registry.store_version(s, result.model, result.metrics, result.metadata, activate=True)
        service.load_entities(s, region.entities)
    with transaction(factory) as s:
        service.score_all(s, progress=False, reasons=False)
    settings = load_settings()
    with transaction(factory) as s:
        deploy(runtime, s, library_with(read_paths([PROJECT_ROOT / "processes"]), opts.decision_files), "simulator",
               form_hash=form_hasher(settings))
    with transaction(factory) as s:
        cal.refresh(s)
    return truth, {"model_version": None}


def simulate(opts: Options) -> dict:
    from engine.bootstrap import build_runtime
    from engine.config import load_settings
    from engine.db import dispose_engines, session_factory, transaction
    from engine.schema import upgrade
    from engine.supervision import inspection

    t_start = time.perf_counter()
    tmp = None
    url = opts.database_url
    if url is None:
        tmp = tempfile.TemporaryDirectory(prefix="regflow-sim-")
        url = f"sqlite:///{Path(tmp.name) / 'simulation.db'}"
    try:
        upgrade(url)
        runtime = build_runtime(load_settings(database_url=url))
        inspection.set_runtime(runtime)
        rng = random.Random(opts.seed)
        with clock.frozen(opts.start):
            truth, _ = _setup(url, opts, runtime)
        factory = session_factory(url)
        officers = Officers(runtime, factory, truth, rng)
        officers.mix = OutcomeMix.from_options(opts)
        officers.letter_signed = opts.letter_signed
        now = opts.start
        plan = campaign_plan(f"模拟抽查 simulated campaign seed {opts.seed}", now, ratios=opts.ratios,
                             control_share=opts.control_share, capacity=opts.entities, lookback_months=12)
        with clock.frozen(now), transaction(factory) as s:
            campaign_iid = runtime.start(s, "inspection_campaign", business_key=f"SIM-{opts.seed}",
                                         actor="planner").instance.id
        extra = {"__plan__": plan, "__public_value__": f"{opts.seed:02d} 07 13 21 28 33 + 09"}
        days = 0
        while True:
            with clock.frozen(now):
                _work_day(runtime, factory, officers, now, extra)
            with transaction(factory) as s:
                running = s.scalar(select(func.count()).select_from(ProcessInstance)
                                   .where(ProcessInstance.status.in_(("running", "suspended"))))
            if not running or days >= opts.max_days:
                break
            days += 1
            now = now + timedelta(days=1)
            run_due(runtime, factory, now=now)
        with transaction(factory) as s:
            summary = summarise(s, opts, campaign_iid)
        summary["elapsed_s"] = round(time.perf_counter() - t_start, 2)
        summary["simulated_days"] = days
        return summary
    finally:
        inspection.set_runtime(None)
        dispose_engines()
        if tmp is not None:
            tmp.cleanup()


#: message -> (its daily share, the payload's date field): what a waiting party sends, on which day
_DAILY_ANSWERS = {
    "information_publicised": (lambda officers: 0.25, "publicised_on"),
    "registered_letter_signed": (lambda officers: officers.letter_signed, "signed_on"),
}


def _work_day(runtime, factory, officers: Officers, now: datetime, extra: dict) -> None:
    """Complete every open task (repeatedly: completing one may open the next) and let parties report."""
    from engine.db import transaction

    for _round in range(50):
        with transaction(factory) as s:
            tasks = list(s.scalars(select(HumanTask).where(HumanTask.status == "open").order_by(HumanTask.id)))
            subs = list(s.execute(select(MessageSubscription.message_name, ProcessInstance.business_key)
                                  .join(ProcessInstance, ProcessInstance.id == MessageSubscription.instance_id)
                                  .where(MessageSubscription.message_name.in_(("rectification_report",
                                                                               *_DAILY_ANSWERS)))))
        did = 0
        for ht in tasks:
            with transaction(factory) as s:
                inst = s.get(ProcessInstance, ht.instance_id)
                if inst.status != "running":
                    continue
                wf = runtime.load_workflow(s, inst.id)
                task = next((t for t in wf.get_tasks() if str(t.id) == ht.task_guid), None)
                wfdata = dict(task.data) if task is not None else {}
                wfdata.update(extra)
                data = officers.data_for(ht, inst, wfdata, now.astimezone(SH).date())
                user = ht.assignee or GROUP_USER[(ht.candidate_groups or ["officers"])[0]]
                runtime.complete_task(s, ht.id, user, data)
                did += 1
        for name, uscc in subs:
            if name in _DAILY_ANSWERS:
                # a party that waits to be heard from answers on one day or never: each day it has not yet, it
                # does with the message's daily share (result B: publicise within 10 days; result 6: sign the
                # registered letter within 30)
                today = now.astimezone(SH).date()
                key = (name, uscc)
                if key in officers.answered or officers.answer_rolls.get(key) == today:
                    continue
                officers.answer_rolls[key] = today  # one decision per entity, message and day
                share_of, payload_key = _DAILY_ANSWERS[name]
                if officers.rng.random() >= share_of(officers):
                    continue
                officers.answered.add(key)
                with transaction(factory) as s:
                    runtime.correlate_message(s, name, {payload_key: today.isoformat()}, {"uscc": uscc})
                did += 1
                continue
            # the party reports the fix once, with the entity's own diligence
            if uscc in officers.reported:
                continue
            if officers.rng.random() < 0.7:
                officers.reported.add(uscc)
                with transaction(factory) as s:
                    runtime.correlate_message(s, "rectification_report", {"note": "已整改"}, {"uscc": uscc})
                did += 1
        if not did:
            return


def summarise(s, opts: Options, campaign_iid: int) -> dict:
    from engine.supervision.campaign_models import Campaign, DrawResult
    from engine.supervision.inspection import VIOLATION_CODES
    from engine.supervision.loop_models import EnforcementCase, Hazard, Publication, RectificationOrder

    camp = s.scalars(select(Campaign).order_by(Campaign.id.desc())).first()
    drawn = {k: 0 for k in ("A", "B", "C", "D", "control")}
    stratum_of = {}
    for uscc, stratum in s.execute(select(DrawResult.uscc, DrawResult.stratum).where(DrawResult.campaign_id == camp.id)):
        drawn[stratum] += 1
        stratum_of[uscc] = stratum
    statuses = dict(s.execute(select(ProcessInstance.status, func.count()).group_by(ProcessInstance.status)).all())
    started = sum(statuses.values())
    results = [p for p in s.scalars(select(Publication).where(Publication.kind == "result",
                                                              Publication.uscc.is_not(None)))]
    paths = {"standard": 0, "heavy": 0}
    codes: dict[str, int] = {}
    hits = {k: [0, 0] for k in drawn}
    path_by_class: dict[str, dict[str, int]] = {}
    for p in results:
        pay = p.payload
        paths[pay["path"]] = paths.get(pay["path"], 0) + 1
        codes[pay["result_code"]] = codes.get(pay["result_code"], 0) + 1
        st = stratum_of.get(p.uscc)
        if st is not None:
            hits[st][1] += 1
            hits[st][0] += pay["result_code"] in VIOLATION_CODES
        pc = path_by_class.setdefault(pay["risk_class"], {})
        pc[pay["path"]] = pc.get(pay["path"], 0) + 1
    hz = dict(s.execute(select(Hazard.status, func.count()).group_by(Hazard.status)).all())
    orders = dict(s.execute(select(RectificationOrder.status, func.count()).group_by(RectificationOrder.status)).all())
    cases = dict(s.execute(select(EnforcementCase.status, func.count()).group_by(EnforcementCase.status)).all())
    provisional = (s.scalar(select(func.count()).select_from(Publication).where(Publication.due_provisional.is_(True)))
                   + s.scalar(select(func.count()).select_from(RectificationOrder)
                              .where(RectificationOrder.provisional.is_(True))))
    return {
        "entities": opts.entities,
        "drawn": drawn,
        "instances": {"started": started, "completed": statuses.get("completed", 0),
                      "open": statuses.get("running", 0) + statuses.get("suspended", 0)},
        "paths": paths,
        "inspections": dict(sorted(codes.items())),
        "hazards": {"opened": sum(hz.values()), "removed": hz.get("removed", 0),
                    "closed_other": hz.get("closed_other", 0),
                    "open": sum(hz.values()) - hz.get("removed", 0) - hz.get("closed_other", 0)},
        "rectifications": {"ordered": sum(orders.values()), "verified": orders.get("verified", 0),
                           "escalated": orders.get("escalated", 0)},
        "enforcement_cases": {"opened": sum(cases.values()),
                              "closed": sum(cases.get(k, 0) for k in ("closed", "not_filed", "terminated"))},
        "published": s.scalar(select(func.count()).select_from(Publication).where(Publication.published_at.is_not(None))),
        "provisional_deadlines": provisional,
        "incidents": s.scalar(select(func.count()).select_from(Incident).where(Incident.status == "open")),
        "hit_rate": {k: round(h / n, 4) if n else None for k, (h, n) in hits.items()},
        "path_by_class": path_by_class,
        "audit_chain_ok": audit.verify(s).ok,
    }
