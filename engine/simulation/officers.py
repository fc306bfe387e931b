"""The simulated office: officers who complete every open task with valid form data on the day it appears,
visit outcomes drawn from the synthetic ground truth (:class:`OutcomeMix`), and parties who answer the
messages the processes wait for (:func:`work_day`).
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import select

from engine.db import transaction
from engine.runtime import clock
from engine.runtime.models import HumanTask, MessageSubscription, ProcessInstance
from engine.supervision.inspection import RESULT_OUTCOMES

from .options import SH, Options

EV = [{"sha256": "b" * 64, "filename": "site.jpg", "size": 4096}]
#: (user, roles, groups) of the simulated office; inspectors log in with their registry user names
OFFICE = [("planner", "officer", "planners"), ("approver", "supervisor", "approvers"),
          ("supervisor", "supervisor", "supervisors"), ("officer", "officer", "officers"),
          ("handler", "officer", "officers,case_handlers"), ("head", "supervisor", "agency_heads,supervisors"),
          ("legal", "officer", "legal_reviewers")]
GROUP_USER = {"planners": "planner", "approvers": "approver", "supervisors": "supervisor", "officers": "officer",
              "case_handlers": "handler", "agency_heads": "head", "legal_reviewers": "legal"}
#: a verified lead with conclusive facts proposes a fine on the spot this often (the summary procedure's rule decides
#: whether it applies); an investigation holds evidence this often; a proposed penalty is a heavy fine this often
#: (legal review, collective deliberation and the right to a hearing follow by rule)
ON_THE_SPOT_SHARE, EVIDENCE_HOLD_SHARE, HEAVY_FINE_SHARE = 0.3, 0.3, 0.3
HEAVY_FINE, USUAL_FINE, ON_THE_SPOT_FINE = 120000, 5000, 1000
#: the authority a transfer's letter names, by the transfer's kind (transfer_models.TRANSFER_KINDS)
RECEIVING = {"other_department": "郑州市金水区卫生健康委员会", "police": "郑州市公安局金水分局",
             "new_jurisdiction": "郑州市二七区市场监督管理局", "judiciary": "郑州市金水区人民检察院"}
#: a visit at which the party asks that a member withdraw (回避), and the head's decision granting it; each rolled
#: per entity from its USCC (the visit's other draws are unchanged)
RECUSAL_SHARE, RECUSAL_GRANTED = 0.05, 0.8
#: the heads of the bureau who deliberate together
HEADS = [{"name": n, "position": p} for n, p in (("局长", "局长"), ("副局长甲", "副局长"), ("副局长乙", "副局长"))]

#: a found violation -> result code weights (codes of ``inspection.RESULT_OUTCOMES``): most problems are "A"
#: (follow-up) or "E" (corrected on the spot); publicity violations "B"/"C" come from the annual-report item;
#: "3/4/5/G" are violations for food-drug, quality, other departments and the police.
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
        #: transfer id -> the day its wait for the receiving authority's receipt was first seen
        self.transfers_seen: dict[int, date] = {}
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
        if bid == "decide_recusal":
            granted = random.Random(f"{inst.business_key}|recusal decision").random() < RECUSAL_GRANTED
            data = {"recusal_decision": "grant" if granted else "reject", "recusal_decided_on": d,
                    "recusal_decision_reason": "当事人所述情形属实，可能影响公正执法" if granted
                    else "当事人所述情形不属于应当回避的情形"}
            if granted:  # mostly the inspection made before stands; otherwise the new team inspects again
                data["recusal_prior_acts_valid"] = random.Random(f"{inst.business_key}|prior acts").random() < 0.7
            return data
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
            # the method the hazard grade decided (processes/hazard_grade.dmn: low → documentary re-check)
            data = {"reinspection_date": d, "method": wfdata.get("reinspection_method") or "on_site",
                    "outcome": "fixed" if fixed else "not_fixed", "evidence": EV}
            if not fixed:
                data["description"] = "未按期整改"
            return data
        if bid == "countersign":
            return {"agree": True}
        if bid == "extension":
            return {"received_on": d, "reason": "设备待采购",
                    "requested_until": (today + timedelta(days=7)).isoformat(),
                    "decision": "approve", "extension_days": 5, "opinion": "同意延期一次"}
        if bid == "verify_lead":
            data = {"lead_source": wfdata.get("lead_source") or "inspection", "verified_facts": "核查属实",
                    "prima_facie_evidence": True, "within_jurisdiction": True, "within_limitation": True,
                    "recommendation": "file_case", "reason": "符合立案条件"}
            if self.rng.random() < ON_THE_SPOT_SHARE:
                data |= {"facts_clear": True, "legal_basis": "《价格法》第四十二条", "proposed_penalties": ["fine"],
                         "proposed_fine": ON_THE_SPOT_FINE}
            return data
        if bid == "summary_decision":  # no pre-printed form: the system numbers and issues the decision
            return {"served_at": clock.now().isoformat(),
                    "summary_officers": [{"name": "卡罗", "cert_no": "ZF-001"}, {"name": "戴夫", "cert_no": "ZF-002"}],
                    "signed": True}
        if bid == "filing":
            return {"decision": "file", "case_number": f"市监立〔{today.year}〕{ht.id}号", "cause": "检查发现违法行为",
                    "filing_date": d, "handlers": [{"name": "卡罗", "cert_no": "ZF-001"},
                                                   {"name": "戴夫", "cert_no": "ZF-002"}]}
        if bid == "investigate":
            data = {"investigators": [{"name": "卡罗", "cert_no": "ZF-001"}, {"name": "戴夫", "cert_no": "ZF-002"}],
                    "facts": "查明事实", "evidence": EV,
                    "conclusion": "penalty" if self.rng.random() < 0.5 else "minor_no_penalty"}
            if self.rng.random() < EVIDENCE_HOLD_SHARE:
                data |= {"evidence_hold": True, "hold_items": "涉案商品20件", "hold_on": d}
            if data["conclusion"] == "penalty":
                heavy = self.rng.random() < HEAVY_FINE_SHARE
                data |= {"proposed_penalties": ["fine"], "proposed_fine": HEAVY_FINE if heavy else USUAL_FINE}
            return data
        if bid == "decide_hold":
            return {"hold_decision": "preserve_record", "hold_decided_on": d, "hold_decision_note": "已拍照取证后退还"}
        if bid == "legal_review":
            return {"legal_review_outcome": "agree", "legal_review_opinion": "事实清楚，证据确凿，程序合法",
                    "legal_reviewed_on": d}
        if bid == "deliberate":
            return {"deliberated_on": d, "participants": HEADS, "collective_outcome": "agree",
                    "collective_opinion": "同意拟处罚意见"}
        if bid == "supervise_hold":
            return {}
        if bid == "pre_notice":
            return {"notice_number": f"告字〔{today.year}〕{ht.id}号", "notice_date": d, "facts": "事实",
                    "legal_basis": "依据", "proposed_penalties": ["fine"],
                    "proposed_fine": wfdata.get("proposed_fine") or USUAL_FINE}
        if bid == "hearing":
            return {"requested": True, "request_date": d, "hearing_at": clock.now().isoformat(),
                    "presiding_officer": "王法官", "party_attended": True, "hearing_conclusion": "维持拟处罚意见"}
        if bid == "decide":
            # (what was proposed says whether a penalty follows)
            penalty = bool(wfdata.get("proposed_penalties"))
            data = {"decision_type": "penalty" if penalty else "minor_no_penalty",
                    "legal_basis": "《价格法》第四十二条", "decision_number": f"决定〔{today.year}〕{ht.id}号",
                    "decision_date": d, "reasoning": "理由"}
            if penalty:
                data |= {"penalties": ["fine"], "fine_amount": wfdata.get("proposed_fine") or USUAL_FINE}
            return data
        if bid == "supervise_overdue":
            return {}
        if bid == "serve_decision":
            return {"document": "penalty_decision", "document_number": f"决定〔{today.year}〕{ht.id}号",
                    "method": "in_person", "served_at": clock.now().isoformat(), "recipient": "张三丰",
                    "signed": True}
        if bid == "execute":
            return {"status": "paid", "amount_paid": wfdata.get("fine_amount") or USUAL_FINE, "paid_on": d}
        if bid == "prepare_transfer":  # the transfer letter (移送函): the facts from the findings, the materials
            return {"receiving": RECEIVING.get(wfdata.get("kind"), "其他行政部门"),
                    "facts": wfdata.get("facts") or "检查发现的问题",
                    "materials": [{"title": "现场检查笔录"}, {"title": "现场照片"}]}
        if bid == "chase_receipt":  # no receipt in 10 working days: the officer fetches the paper receipt
            return {"action": "paper_receipt", "received_on": d, "received_by": "接收机关收文人", "reference": "",
                    "accepted": True}
        if bid == "handle_refusal":  # a refused finding is ours to rectify; a refused notice of a move is closed
            ours = bool(wfdata.get("findings")) and wfdata.get("team") is not None
            return {"outcome": "handled_ourselves" if ours else "closed",
                    "note": "转由本机关依法处理" if ours else "已告知当事人向迁入地办理"}
        if bid == "close":
            return {"close_reason": "executed" if wfdata.get("decision_type") == "penalty" else "no_penalty",
                    "closed_on": d, "rectification_verified": False, "summary": "结案报告"}
        raise RuntimeError(f"the simulator does not know task {bid!r} of {inst.process_id}")

    def inspection(self, wfdata: dict, today: date) -> dict:
        """The inspection form for a result code drawn by :class:`OutcomeMix` from the ground truth."""
        uscc = wfdata["uscc"]
        code = self.mix.draw(self.truth.get(uscc, 0.1), self.rng)
        outcome = RESULT_OUTCOMES[code]
        clauses = wfdata["merged_checklist"]["clauses"]
        codes = [c["code"] for c in clauses]
        # the method route_by_risk decided (class A: documentary, no proactive on-site visit)
        data = {"inspection_date": today.isoformat(), "method": wfdata.get("method") or "on_site",
                "credentials_shown": True, "recusal_requested": False, "party_signed": code != "result_8",
                "result_code": code}
        members = [m for m in (wfdata.get("team") or {}).get("members", []) if m["role"] != "leader"]
        if (members and wfdata.get("recusal_decision") is None
                and random.Random(f"{uscc}|recusal").random() < RECUSAL_SHARE):  # once per visit: the head decides
            # the inspection goes on (决定作出之前，不停止调查): the request is recorded with the result
            data |= {"recusal_requested": True, "recusal_against": members[0]["code"],
                     "recusal_reason": "当事人称该执法人员与其有亲属关系"}
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
        if outcome in ("problem", "transfer"):
            grade = ("high" if code == "result_G" else
                     self.rng.choices(["low", "medium", "high"], weights=[4, 5, 1])[0])
            item = next(cv["item"] for c in clauses if c["code"] == bad for cv in c["covers"])
            data["findings"] = [{"item_code": item, "clause": bad, "description": "检查发现问题",
                                 "hazard_grade": grade}]
        return data


#: message -> (its daily share, the payload's date field): what a waiting party sends, on which day
_DAILY_ANSWERS = {
    "information_publicised": (lambda officers: 0.25, "publicised_on"),
    "registered_letter_signed": (lambda officers: officers.letter_signed, "signed_on"),
    # a party with the right to a hearing asks for one within its 5 working days, or lets them pass
    "hearing_request": (lambda officers: 0.4, "requested_on"),
}


#: the receiving authority answers a transfer (移送) on a day after it was sent with this daily share (most within
#: the 10 working days the transfer waits; the rest are chased), and refuses it this often
TRANSFER_ANSWER_SHARE, TRANSFER_REFUSAL_SHARE = 0.35, 0.1


def answer_transfers(runtime, factory, officers: Officers, now: datetime, waiting: list[tuple[int, dict]]) -> int:
    """The receiving authorities' receipts (message ``transfer_receipt`` correlated by ``transfer_id``): each transfer
    waited for is answered on a later day than it was first seen waiting, with the daily share; how many were."""
    today, did = now.astimezone(SH).date(), 0
    for _iid, correlations in waiting:
        transfer_id = correlations.get("transfer_id")
        seen = officers.transfers_seen.setdefault(transfer_id, today)
        key = ("transfer_receipt", str(transfer_id))
        if seen == today or key in officers.answered or officers.answer_rolls.get(key) == today:
            continue
        officers.answer_rolls[key] = today
        if officers.rng.random() >= TRANSFER_ANSWER_SHARE:
            continue
        officers.answered.add(key)
        accepted = officers.rng.random() >= TRANSFER_REFUSAL_SHARE
        receipt = {"received_on": today.isoformat(), "received_by": "接收机关收文人",
                   "reference": f"受〔{today.year}〕{transfer_id}号", "accepted": accepted,
                   "refusal_reason": None if accepted else "不属于本机关管辖"}
        with transaction(factory) as s:
            runtime.correlate_message(s, "transfer_receipt", receipt, {"transfer_id": transfer_id})
        did += 1
    return did


def work_day(runtime, factory, officers: Officers, now: datetime, extra: dict) -> None:
    """Complete every open task (repeatedly: completing one may open the next) and let parties report."""
    for _round in range(50):
        with transaction(factory) as s:
            tasks = list(s.scalars(select(HumanTask).where(HumanTask.status == "open").order_by(HumanTask.id)))
            subs = list(s.execute(select(MessageSubscription.message_name, ProcessInstance.business_key)
                                  .join(ProcessInstance, ProcessInstance.id == MessageSubscription.instance_id)
                                  .where(MessageSubscription.message_name.in_(("rectification_report",
                                                                               *_DAILY_ANSWERS)))))
            receipts = list(s.execute(select(MessageSubscription.instance_id, MessageSubscription.correlations)
                                      .where(MessageSubscription.message_name == "transfer_receipt")))
        did = answer_transfers(runtime, factory, officers, now, receipts)
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
