"""Team formation: the hard rules, every pool filter, no qualified inspector, replacement after leave or
recusal (logged), determinism, verification and the idempotent ``team.*`` service tasks."""
from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import asdict
from datetime import date, datetime, timezone

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

import engine.service_tasks.teams  # noqa: F401  (registers team.*; until engine.service_tasks imports it)
import engine.supervision.registry_models  # noqa: F401
from engine.db import JsonText
from engine.runtime.deploy import deploy, read_paths
from engine.runtime.models import AuditEvent, Incident
from engine.runtime.services import BpmnError, ServiceContext, registry
from engine.supervision import registries, teams
from engine.supervision.registry_models import (
    Department,
    Inspector,
    InspectorLeave,
    Skill,
    TeamAssignment,
    TeamDraw,
)
from engine.supervision.teams_pool import pool_doc, pool_text
from scoring.models import Entity

NOW = datetime(2026, 3, 5, 2, 0, tzinfo=timezone.utc)
D = "410105"
USCC = ("91410105341672112H", "914101050684038853", "92410105432445193J")


class Rollback(Exception):
    pass


def officer(s, code, skills=("general",), *, leader=False, region=D, cert=date(2030, 12, 31), expert=False,
            seniority=5, active=True):
    i = Inspector(code=code, name=code, username=code.lower(), department="amr",
                  cert_no=None if expert else f"C-{code}", cert_expires=None if expert else cert, skills=list(skills),
                  region=region, is_expert=expert, leader_eligible=leader, seniority=seniority, active=active,
                  updated_at=NOW)
    s.add(i)
    s.flush()
    return i


def base(s, n_entities: int = 3) -> list[int]:
    s.add(Department(code="amr", name="market"))
    for k in ("general", "food_safety", "drug_gsp", "pricing"):
        s.add(Skill(code=k, name=k))
    ids = []
    for n, uscc in enumerate(USCC[:n_entities]):
        e = Entity(uscc=uscc, name=f"e{n}", industry_section="F", district=D, entity_type="llc")
        s.add(e)
        s.flush()
        ids.append(e.id)
    return ids


def pool8(s):
    officer(s, "L1", ("general",), leader=True)
    officer(s, "L2", ("food_safety",), leader=True, seniority=15)
    officer(s, "M1", ("general", "drug_gsp"))
    officer(s, "M2", ("drug_gsp",))
    officer(s, "M3", ("food_safety",))
    officer(s, "M4", ("general",))
    officer(s, "M5", ("pricing",))
    officer(s, "X1", ("drug_gsp", "food_safety"), expert=True)


def form(s, entity_id, instance=1, skills=("drug_gsp", "food_safety"), size=2, **kw):
    return teams.form_team(s, instance_id=instance, task_key=kw.pop("task", "t"), entity_id=entity_id,
                           skills=list(skills), team_size=size, now=kw.pop("now", NOW), **kw)


def check_rules(s, result, skills, size):
    rows = {m["code"]: (m, s.scalar(select(Inspector).where(Inspector.code == m["code"]))) for m in result.members}
    officers = [i for _m, i in rows.values() if not i.is_expert]
    assert len(officers) >= max(2, size)
    assert all(i.cert_no and i.cert_expires >= NOW.date() for i in officers)
    assert set(skills) <= {k for _m, i in rows.values() for k in i.skills}
    leaders = [(m, i) for m, i in rows.values() if m["role"] == "leader"]
    assert len(leaders) == 1 and leaders[0][1].leader_eligible and not leaders[0][1].is_expert
    assert all((m["role"] == "expert") == i.is_expert for m, i in rows.values())
    assert result.leader == leaders[0][1].username


def test_hard_rules_hold_across_many_draws(db):
    with db.tx() as s:
        e1, *_ = base(s)
        pool8(s)
        seen = set()
        for inst in range(1, 41):
            skills = [("drug_gsp", "food_safety"), ("general",), ("pricing", "drug_gsp")][inst % 3]
            size = 2 + inst % 2
            r = form(s, e1, inst, skills=skills, size=size, policy=teams.TeamPolicy(workload_cap=100, rotation="off"))
            check_rules(s, r, skills, size)
            seen.add(frozenset(m["code"] for m in r.members))
        assert len(seen) > 5  # random, not a fixed roster


def test_expert_is_not_counted_and_covers_a_skill_nobody_else_has(db):
    with db.tx() as s:
        e1, *_ = base(s)
        officer(s, "L1", leader=True)
        officer(s, "X1", ("drug_gsp",), expert=True)
        with pytest.raises(teams.NoQualifiedInspector, match="only 1 certified officer"):
            form(s, e1, skills=("drug_gsp",))
        officer(s, "M1")
        r = form(s, e1, skills=("drug_gsp",))
        assert sorted((m["code"], m["role"]) for m in r.members) == [("L1", "leader"), ("M1", "member"),
                                                                     ("X1", "expert")]
        with pytest.raises(teams.NoQualifiedInspector, match="skill 'drug_gsp'"):
            form(s, e1, instance=2, skills=("drug_gsp",), policy=teams.TeamPolicy(allow_experts=False))


@pytest.mark.parametrize("filter_", ["leave", "expired", "conflict", "inactive", "other_district"])
def test_filters_exclude_the_officer(db, filter_):
    with db.tx() as s:
        e1, *_ = base(s)
        officer(s, "L1", leader=True)
        officer(s, "M1")
        m2 = officer(s, "M2", ("drug_gsp",), active=filter_ != "inactive",
                     cert=date(2026, 3, 6) if filter_ == "expired" else date(2030, 1, 1),
                     region="410103" if filter_ == "other_district" else D)
        if filter_ == "leave":
            s.add(InspectorLeave(inspector_id=m2.id, start_date=date(2026, 3, 9), end_date=date(2026, 3, 9),
                                 reason="training"))
        if filter_ == "conflict":
            registries.declare_conflict(s, "M2", USCC[0], "brother-in-law is the legal representative", now=NOW)
        window = dict(window_start=date(2026, 3, 5), window_end=date(2026, 3, 10))
        with pytest.raises(teams.NoQualifiedInspector) as err:
            form(s, e1, skills=("drug_gsp",), policy=teams.TeamPolicy(allow_experts=False), **window)
        assert err.value.missing == [{"what": "skill", "skill": "drug_gsp"}]
        assert f"no certified officer with skill 'drug_gsp' available in district {D}" in str(err.value)
        expected = {"leave": "leave: 2026-03-09..2026-03-09 training", "expired": "certificate: expired",
                    "conflict": "conflict: brother-in-law", "inactive": "inactive"}
        if filter_ in expected:
            assert err.value.excluded["M2"].startswith(expected[filter_])
            assert f"(excluded: 1 {expected[filter_].split(':')[0]})" in str(err.value)
        else:
            assert "M2" not in err.value.excluded
        # outside the leave period (or before the certificate lapses) the officer is drawn again
        if filter_ in ("leave", "expired"):
            r = form(s, e1, instance=2, skills=("drug_gsp",), window_start=date(2026, 3, 5),
                     window_end=date(2026, 3, 6))
            assert "M2" in {m["code"] for m in r.members}


def test_no_leader_and_higher_level_officer_is_borrowed(db):
    with db.tx() as s:
        e1, *_ = base(s)
        officer(s, "M1")
        officer(s, "M2")
        with pytest.raises(teams.NoQualifiedInspector, match="no leader-eligible certified officer available"):
            form(s, e1, skills=())
        officer(s, "C1", leader=True, region="410100")  # city level covers every district of Zhengzhou
        r = form(s, e1, skills=(), size=2)
        assert r.members[0]["code"] == "C1" and r.members[0]["role"] == "leader"
        with pytest.raises(teams.NoQualifiedInspector, match="seniority ≥ 10"):
            form(s, e1, instance=2, skills=(), policy=teams.TeamPolicy(min_leader_seniority=10))


def test_workload_cap_and_release(db):
    with db.tx() as s:
        e1, e2, e3 = base(s)
        officer(s, "L1", leader=True)
        officer(s, "L2", leader=True)
        for c in ("M1", "M2"):
            officer(s, c)
        cap = teams.TeamPolicy(workload_cap=1, rotation="off")
        first = form(s, e1, 1, skills=(), policy=cap)
        second = form(s, e2, 2, skills=(), policy=cap)
        assert not {m["code"] for m in first.members} & {m["code"] for m in second.members}
        with pytest.raises(teams.NoQualifiedInspector, match=r"excluded: 4 workload"):
            form(s, e3, 3, skills=(), policy=cap)
        assert teams.release_team(s, first.team_id, now=NOW) == 2
        third = form(s, e3, 3, skills=(), policy=cap)
        assert {m["code"] for m in third.members} == {m["code"] for m in first.members}
        assert registries.open_assignment_counts(s) == {i: 1 for i in s.scalars(select(Inspector.id))}


def test_rotation_keeps_last_team_off_the_next_visit(db):
    with db.tx() as s:
        e1, *_ = base(s)
        officer(s, "L1", leader=True)
        officer(s, "L2", leader=True)
        officer(s, "M1")
        officer(s, "M2")
        first = form(s, e1, 1, skills=())
        teams.release_team(s, first.team_id, now=NOW)
        again = form(s, e1, 2, skills=())
        assert not {m["code"] for m in first.members} & {m["code"] for m in again.members}
        assert not again.rotation_relaxed
        teams.release_team(s, again.team_id, now=NOW)
        officer(s, "M3")
        # five officers, two of them on the last team: a team of four needs one of those two
        with pytest.raises(teams.NoQualifiedInspector, match=r"only 3 certified.*need 4 \(excluded: 2 rotation\)"):
            form(s, e1, 3, skills=(), size=4, policy=teams.TeamPolicy(rotation="strict"))
        relaxed = form(s, e1, 4, skills=(), size=4)
        assert relaxed.rotation_relaxed
        assert s.get(TeamDraw, relaxed.draw_id).pool["rotation_relaxed"] is True
        # the pool is recorded from pre-encoded candidate records: exactly the document pool_doc makes, as the
        # text json.dumps makes of it (relaxed: the rotation-excluded join the candidates; not: they do not)
        entity = registries.get_entity(s, e1)
        seed = teams.draw_seed(4, entity.uscc, "")
        for flag in (True, False):
            pool = teams.build_pool(s, entity=entity, seed=seed, start=NOW.date(), end=NOW.date(),
                                    policy=teams.TeamPolicy())
            assert pool.rotation_excluded
            text = pool_text(s, pool, flag)
            assert type(text) is JsonText and text == json.dumps(pool_doc(pool, flag))
        stored = s.execute(select(TeamDraw.__table__.c.pool).where(TeamDraw.id == relaxed.draw_id)).scalar()
        assert stored["candidates"] and all(c["key"] == teams.inspector_key(relaxed.seed, c["code"])
                                            for c in stored["candidates"])


def test_replacement_after_leave_is_logged_and_verifiable(db):
    with db.tx() as s:
        e1, *_ = base(s)
        pool8(s)
        r = form(s, e1, 7, skills=("drug_gsp",), size=3)
        member = next(m for m in r.members if m["role"] == "member")
        leaver = registries.get_inspector(s, member["code"])
        s.add(InspectorLeave(inspector_id=leaver.id, start_date=NOW.date(), end_date=date(2026, 3, 20),
                             reason="sick leave"))
        a = s.get(TeamAssignment, member["assignment_id"])
        out = teams.replace_member(s, a, "leave: sick leave 2026-03-05..2026-03-20", now=NOW)
        assert a.released_at == NOW and a.release_reason.startswith("leave:") and a.replaced_by_id is not None
        codes = {m["code"] for m in out.members}
        assert leaver.code not in codes and len(out.members) == len(r.members)
        check_rules(s, out, ["drug_gsp"], 3)
        assert out.released == [{"assignment_id": a.id, "code": leaver.code, "reason": a.release_reason}]
        doc = teams.team_doc(s, r.team_id)
        assert [d["kind"] for d in doc["draws"]] == ["form", "replace"]
        assert any(h["code"] == leaver.code and h["release_reason"].startswith("leave:") for h in doc["assignments"])
        assert teams.verify_draw(s, r.draw_id)["ok"] and teams.verify_draw(s, out.draw_id)["ok"]
        # idempotent: the same replacement again returns the recorded result, writes nothing
        n = s.scalar(select(func.count()).select_from(TeamAssignment))
        assert teams.replace_member(s, a, "leave: sick leave", now=NOW) == out
        assert s.scalar(select(func.count()).select_from(TeamAssignment)) == n


def test_recused_leader_is_succeeded(db):
    with db.tx() as s:
        e1, *_ = base(s)
        officer(s, "L1", leader=True)
        officer(s, "L2", leader=True)
        officer(s, "M1")
        officer(s, "M2")
        r = form(s, e1, 1, skills=(), size=3)
        leader = next(m for m in r.members if m["role"] == "leader")
        registries.declare_conflict(s, leader["code"], USCC[0], "former employee of the entity", now=NOW)
        out = teams.replace_inspector(s, r.team_id, leader["code"], "recusal: former employee", now=NOW)
        roles = sorted(m["role"] for m in out.members)
        assert roles == ["leader", "member", "member"] and leader["code"] not in {m["code"] for m in out.members}
        assert teams.verify_draw(s, out.draw_id)["ok"]


def test_replacement_with_fewer_than_two_left_blocks(db):
    with db.tx() as s:
        e1, *_ = base(s)
        officer(s, "L1", leader=True)
        officer(s, "M1")
        r = form(s, e1, 1, skills=())
        team_id = r.team_id
    with pytest.raises(teams.NoQualifiedInspector, match=r"cannot replace M1 \(recusal\).*only 1 certified officer"):
        with db.tx() as s:
            teams.replace_inspector(s, team_id, "M1", "recusal", now=NOW)
    with db.tx() as s:  # rolled back: M1 is still on the team
        assert {m["code"] for m in teams.team_doc(s, team_id)["members"]} == {"L1", "M1"}


def test_same_seed_same_team_and_tampering_is_detected(db):
    picked = []
    for _ in range(2):
        try:
            with db.tx() as s:
                e1, *_ = base(s)
                pool8(s)
                r = form(s, e1, 42, campaign_seed="lottery-2026-03-01")
                picked.append((r.seed, sorted((m["code"], m["role"]) for m in r.members)))
                raise Rollback
        except Rollback:
            pass
    assert picked[0] == picked[1]
    assert picked[0][0] == teams.draw_seed(42, USCC[0], "lottery-2026-03-01")
    with db.tx() as s:
        e1, *_ = base(s)
        pool8(s)
        others = {tuple(sorted(m["code"] for m in form(s, e1, 42, task=f"t{k}", campaign_seed=f"v{k}",
                                                        policy=teams.TeamPolicy(rotation="off", workload_cap=99)
                                                        ).members)) for k in range(12)}
        assert len(others) > 1  # the public value changes the draw
        r = form(s, e1, 42, campaign_seed="lottery-2026-03-01",
                 policy=teams.TeamPolicy(rotation="off", workload_cap=99))
        draw = s.get(TeamDraw, r.draw_id)
        assert teams.verify_draw(s, draw.id)["ok"]
        draw.inputs = {**draw.inputs, "campaign_seed": "lottery-2026-03-02"}
        assert not teams.verify_draw(s, draw.id)["ok"]


def _ctx(s, instance=5, task="guid-1"):
    return ServiceContext(session=s, instance_id=instance, task_guid=task, bpmn_id="form_team", business_key=USCC[0],
                          actor="system", now=NOW)


def test_team_form_operator_is_idempotent(db):
    op = registry.get("team.form")
    with db.tx() as s:
        e1, *_ = base(s)
        pool8(s)
        first = op.fn(_ctx(s), entity_id=e1, skills=["drug_gsp"], team_size=2, window_start="2026-03-05")
        n = (s.scalar(select(func.count()).select_from(TeamAssignment)),
             s.scalar(select(func.count()).select_from(TeamDraw)))
        assert op.fn(_ctx(s), entity_id=e1, skills=["drug_gsp"], team_size=2, window_start="2026-03-05") == first
        assert (s.scalar(select(func.count()).select_from(TeamAssignment)),
                s.scalar(select(func.count()).select_from(TeamDraw))) == n
        assert set(first) >= {"members", "leader", "seed", "assignment_ids", "team_id"}
        rep = registry.get("team.replace_member").fn(_ctx(s, task="guid-2"), team_id=first["team_id"],
                                                     inspector=first["members"][1]["code"], reason="recusal")
        assert registry.get("team.replace_member").fn(_ctx(s, task="guid-2"), team_id=first["team_id"],
                                                      inspector=first["members"][1]["code"], reason="recusal") == rep
        assert registry.get("team.skills_for_items").fn(_ctx(s), item_codes=[]) == {"skills": [], "departments": []}
        assert registry.get("team.release").fn(_ctx(s), team_id=first["team_id"])["released"] == 2


def test_team_form_operator_raises_bpmn_error(db):
    with db.tx() as s:
        e1, *_ = base(s)
        officer(s, "L1", leader=True)
        officer(s, "M1")
        with pytest.raises(BpmnError) as err:
            registry.get("team.form").fn(_ctx(s), entity_id=e1, skills=["drug_gsp"])
    assert err.value.code == "no_qualified_inspector"
    assert err.value.payload["missing"] == [{"what": "skill", "skill": "drug_gsp"}]
    assert "skill 'drug_gsp' available in district 410105" in err.value.payload["message"]


BPMN = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
                  xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core"
                  id="Definitions_team" targetNamespace="http://regflow.example/test">
  <bpmn:error id="err_noone" name="No qualified inspector" errorCode="no_qualified_inspector"/>
  <bpmn:process id="PROCESS" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="form_team"/>
    <bpmn:serviceTask id="form_team" name="Form team">
      <bpmn:extensionElements>
        <spiffworkflow:serviceTaskOperator id="team.form" resultVariable="team">
          <spiffworkflow:parameters>
            <spiffworkflow:parameter id="entity_id" type="int" value="entity_id"/>
            <spiffworkflow:parameter id="skills" type="list" value="skills"/>
            <spiffworkflow:parameter id="team_size" type="int" value="2"/>
          </spiffworkflow:parameters>
        </spiffworkflow:serviceTaskOperator>
      </bpmn:extensionElements>
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
    </bpmn:serviceTask>
    BOUNDARY
    <bpmn:sequenceFlow id="f2" sourceRef="form_team" targetRef="end"/>
    <bpmn:endEvent id="end"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>
  </bpmn:process>
</bpmn:definitions>
"""
BOUNDARY = """<bpmn:boundaryEvent id="on_noone" attachedToRef="form_team">
      <bpmn:outgoing>f_noone</bpmn:outgoing><bpmn:errorEventDefinition errorRef="err_noone"/>
    </bpmn:boundaryEvent>
    <bpmn:sequenceFlow id="f_noone" sourceRef="on_noone" targetRef="end_noone"/>
    <bpmn:endEvent id="end_noone"><bpmn:incoming>f_noone</bpmn:incoming></bpmn:endEvent>"""


def test_in_bpmn_routes_to_boundary_or_opens_an_incident(runtime, db, tmp_path):
    (tmp_path / "caught.bpmn").write_text(BPMN.replace("PROCESS", "team_caught").replace("BOUNDARY", BOUNDARY))
    (tmp_path / "uncaught.bpmn").write_text(BPMN.replace("PROCESS", "team_uncaught").replace("BOUNDARY", ""))
    with db.tx() as s:
        deploy(runtime, s, read_paths([tmp_path / "caught.bpmn", tmp_path / "uncaught.bpmn"]), "designer")
        e1, *_ = base(s)
        officer(s, "L1", leader=True)
        officer(s, "M1", ("food_safety",))
    with db.tx() as s:
        ok = runtime.start(s, "team_caught", business_key=USCC[0], data={"entity_id": e1, "skills": ["food_safety"]})
        assert ok.instance.status == "completed" and ok.failure is None
        data = runtime.load_workflow(s, ok.instance.id).get_tasks(spec_name="end")[0].data
        assert {m["code"] for m in data["team"]["members"]} == {"L1", "M1"} and data["team"]["leader"] == "l1"
        assert s.scalar(select(func.count()).select_from(TeamDraw).where(TeamDraw.instance_id == ok.instance.id)) == 1
    with db.tx() as s:
        caught = runtime.start(s, "team_caught", data={"entity_id": e1, "skills": ["drug_gsp"]})
        assert caught.instance.status == "completed" and caught.failure is None
        kinds = [(e.kind, e.bpmn_id) for e in s.scalars(select(AuditEvent).where(
            AuditEvent.instance_id == caught.instance.id).order_by(AuditEvent.seq))]
        assert ("element_completed", "end_noone") in kinds
    with db.tx() as s:
        stuck = runtime.start(s, "team_uncaught", data={"entity_id": e1, "skills": ["drug_gsp"]})
        assert "incident_id" in stuck.failure  # at once: retrying cannot staff the team
    with db.tx() as s:
        inc = s.get(Incident, stuck.failure["incident_id"])
        assert inc.status == "open" and "no certified officer with skill 'drug_gsp' available in district 410105" \
            in inc.message
        assert s.scalar(select(func.count()).select_from(TeamDraw).where(
            TeamDraw.instance_id == stuck.instance.id)) == 0  # the failed call left nothing behind


def test_formations_and_replacements_in_one_transaction_get_distinct_rising_ids(db):
    """Every insert into the team tables takes its id from the allocator (engine.db.ids): a formation, a
    replacement (unit of work) and another formation in one transaction never collide."""
    with db.tx() as s:
        e1, e2, e3 = base(s)
        pool8(s)
        r1 = form(s, e1, 1, skills=("drug_gsp",), size=3)
        a = s.get(TeamAssignment, next(m for m in r1.members if m["role"] == "member")["assignment_id"])
        rep = teams.replace_member(s, a, "recusal: related to the owner", now=NOW)
        r2 = form(s, e2, 2, skills=("drug_gsp",), new_key=True)
        draws = [r1.draw_id, rep.draw_id, r2.draw_id]
        assert draws == sorted(set(draws))
        assigned = r1.assignment_ids + rep.assignment_ids + r2.assignment_ids
        assert assigned == sorted(set(assigned))
        stored = s.get(TeamDraw, r2.draw_id)
        assert stored.result["assignment_ids"] == r2.assignment_ids and stored.result["members"] == r2.members
        assert {x.id for x in s.scalars(select(TeamAssignment).where(TeamAssignment.team_id == r2.team_id))} \
            == set(r2.assignment_ids)
        assert teams.verify_draw(s, r2.draw_id)["ok"]
    with db.tx() as s:
        r3 = form(s, e3, 3, skills=("drug_gsp",))
        assert r3.draw_id > r2.draw_id and min(r3.assignment_ids) > max(assigned)
    # a caller that wrongly claims a new key: the (instance, task) constraint still refuses a second draw
    with pytest.raises(IntegrityError), db.tx() as s:
        form(s, e3, 3, skills=("drug_gsp",), new_key=True)


def test_team_result_to_dict_is_asdict_without_sharing():
    r = teams.TeamResult(team_id=3, draw_id=4, seed="ab", algorithm="x", assignment_ids=[7, 8], leader="u1",
                         members=[{"assignment_id": 7, "code": "I1", "role": "leader", "skills": ["a", "b"]}],
                         released=[{"code": "I2", "reasons": ["leave"]}], promoted="I1", rotation_relaxed=True)
    doc = r.to_dict()
    assert doc == asdict(r) and list(doc) == list(asdict(r))
    doc["members"][0]["skills"].append("c")
    doc["released"][0]["reasons"].append("x")
    doc["assignment_ids"].append(9)
    assert r.members[0]["skills"] == ["a", "b"] and r.released[0]["reasons"] == ["leave"]
    assert r.assignment_ids == [7, 8]


def test_inspector_key_is_the_documented_hmac():
    """An inspector's key is HMAC-SHA256(seed, code), as the team draw documents it."""
    seed = hashlib.sha256(b"42|91410105341672112H|").hexdigest()
    for code in ("INS-0001", "检查员-7", ""):
        assert teams.inspector_key(seed, code) == hmac.new(bytes.fromhex(seed), code.encode(), "sha256").hexdigest()
