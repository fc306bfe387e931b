"""Agencies as data: a bureau and its stations, validation on save, the agency responsible for a district (the most
specific active one, a station before its bureau), users' membership, and the demo's agencies."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from engine.demo import DEMO_DATA
from engine.errors import Conflict, InvalidInput, NotFound
from engine.runtime.users import add_user
from engine.supervision import agencies
from engine.supervision.document_models import Agency, AgencyMember
from scoring.factors import DISTRICTS


def _city(s) -> None:
    agencies.save_agency(s, code="郑市监", name="郑州市市场监督管理局", districts=["410100"])
    agencies.save_agency(s, code="郑市监金水所", name="金水市场监管所", districts="410105;410108", parent="郑市监")
    agencies.save_agency(s, code="郑市监中原所", name="中原市场监管所", districts=["410102", "410103"], parent="郑市监")


def test_a_station_before_its_bureau_and_the_bureau_for_the_rest(db):
    with db.tx() as s:
        _city(s)
    with db.tx() as s:
        assert agencies.responsible_agency(s, "410105").code == "郑市监金水所"
        assert agencies.responsible_agency(s, "410108").code == "郑市监金水所"
        assert agencies.responsible_agency(s, "410103").code == "郑市监中原所"
        assert agencies.responsible_agency(s, " 410122 ").code == "郑市监"  # a county no station covers
        with pytest.raises(NotFound, match="no active agency covers district 420102"):
            agencies.responsible_agency(s, "420102")
        with pytest.raises(InvalidInput, match="6-digit"):
            agencies.responsible_agency(s, "4101")
    with db.tx() as s:  # an inactive station hands its districts back to the bureau
        agencies.save_agency(s, code="郑市监金水所", name="金水市场监管所", districts="410105;410108",
                             parent="郑市监", active=False)
    with db.tx() as s:
        assert agencies.responsible_agency(s, "410105").code == "郑市监"
        assert agencies.responsible_agency(s, "410102").code == "郑市监中原所"


def test_same_coverage_a_station_still_wins_and_a_tie_is_a_conflict(db):
    with db.tx() as s:
        _city(s)
        # a station covering the whole city code sits below the bureau covering the same code: the station wins
        agencies.save_agency(s, code="郑市监综合所", name="综合执法所", districts=["410100"], parent="郑市监")
    with db.tx() as s:
        assert agencies.responsible_agency(s, "410122").code == "郑市监综合所"
        assert agencies.responsible_agency(s, "410105").code == "郑市监金水所"  # naming the district is narrower
    with db.tx() as s:  # two agencies at the same level written past save_agency's checks: refused, both named
        s.add(Agency(code="甲", name="甲局", districts=["410185"], active=True, updated_at=s.get(Agency, 1).updated_at))
        s.add(Agency(code="乙", name="乙局", districts=["410185"], active=True, updated_at=s.get(Agency, 1).updated_at))
    with db.tx() as s, pytest.raises(Conflict, match="410185 is covered equally by the agencies 甲 and 乙"):
        agencies.responsible_agency(s, "410185")


def test_save_checks_everything_before_writing(db):
    with db.tx() as s:
        _city(s)
    cases = [
        (dict(code="郑 市", name="x", districts=["410105"]), InvalidInput, "without spaces"),
        (dict(code="郑市监2", name="x", districts=["410105"]), InvalidInput, "or a digit"),
        (dict(code="新所", name="", districts=["410105"]), InvalidInput, "name of 1–200"),
        (dict(code="新所", name="新所", districts=["41010"]), InvalidInput, "'41010' is not a 6-digit"),
        (dict(code="新所", name="新所", districts=[]), InvalidInput, "at least one district"),
        (dict(code="新所", name="新所", districts=["410105"], parent="无此局"), NotFound, "no agency with the code"),
        (dict(code="新所", name="新所", districts=["420102"], parent="郑市监"), InvalidInput,
         "districts 420102 lie outside its bureau 郑市监"),
        (dict(code="新所", name="新所", districts=["410105"], parent="郑市监"), Conflict,
         "410105 already covered by 郑市监金水所"),
        (dict(code="新所", name="金水市场监管所", districts=["410185"], parent="郑市监"), Conflict,
         "belongs to agency 郑市监金水所"),
        (dict(code="郑市监", name="郑州市市场监督管理局", districts=["410100"], parent="郑市监金水所"), InvalidInput,
         "cycle of parents"),
    ]
    for kwargs, error, message in cases:
        with db.tx() as s:
            with pytest.raises(error, match=message):
                agencies.save_agency(s, **kwargs)
            assert s.scalar(select(func.count()).select_from(Agency)) == 3, kwargs
    with db.tx() as s:  # inactive, an overlap is allowed (it resolves nothing)
        _a, outcome = agencies.save_agency(s, code="旧所", name="旧所", districts=["410105"], parent="郑市监",
                                           active=False)
        assert outcome == "created"
        assert agencies.save_agency(s, code="旧所", name="旧所", districts=["410105"], parent="郑市监",
                                    active=False)[1] == "unchanged"


def test_users_belong_to_one_agency(db):
    with db.tx() as s:
        _city(s)
        add_user(s, "alice", "alice-pass-1", "officer", "officers")
        add_user(s, "bob", "bob-pass-12", "officer", "officers")
    with db.tx() as s:
        assert agencies.agency_of_user(s, "alice") is None
        agencies.assign_member(s, "alice", "郑市监金水所")
        agencies.assign_member(s, "bob", "郑市监")
    with db.tx() as s:
        assert agencies.agency_of_user(s, "alice").code == "郑市监金水所"
        agencies.assign_member(s, "alice", "郑市监中原所")  # moving: still one agency
    with db.tx() as s:
        assert agencies.agency_of_user(s, "alice").code == "郑市监中原所"
        assert s.scalar(select(func.count()).select_from(AgencyMember)) == 2
        with pytest.raises(NotFound, match="no user named 'carol'"):
            agencies.assign_member(s, "carol", "郑市监")
        with pytest.raises(NotFound, match="no agency with the code '无'"):
            agencies.assign_member(s, "alice", "无")
        listed = {a["code"]: a for a in agencies.list_agencies(s)}
        assert listed["郑市监"]["members"] == 1 and listed["郑市监中原所"]["members"] == 1
        assert listed["郑市监中原所"]["parent"] == "郑市监" and listed["郑市监"]["parent"] is None
        assert [a["code"] for a in agencies.list_agencies(s)][0] == "郑市监"  # the bureau first


def test_demo_agencies_cover_every_demo_district_idempotently(db):
    with db.tx() as s:
        for name in ("officer", "officer2", "supervisor"):
            add_user(s, name, f"{name}-pass-1", "officer", "officers")
        first = agencies.load_agency_folder(s, DEMO_DATA)
    assert first == {"agencies": {"created": 3, "updated": 0, "unchanged": 0}, "members_added": 3}
    with db.tx() as s:
        agencies.assign_member(s, "supervisor", "郑市监金水所")  # a member who moved stays where they are
        again = agencies.load_agency_folder(s, DEMO_DATA)
    assert again == {"agencies": {"created": 0, "updated": 0, "unchanged": 3}, "members_added": 0}
    with db.tx() as s:
        bureau = agencies.get_agency(s, "郑市监")
        assert bureau.name == "郑州市市场监督管理局" and bureau.parent_id is None
        resolved = {d: agencies.responsible_agency(s, d).code for d in DISTRICTS}
        assert resolved["410105"] == "郑市监金水所" and resolved["410102"] == "郑市监中原所"
        assert resolved["410181"] == "郑市监"
        assert set(resolved.values()) == {"郑市监", "郑市监金水所", "郑市监中原所"}
        assert agencies.agency_of_user(s, "officer").code == "郑市监金水所"
        assert agencies.agency_of_user(s, "officer2").code == "郑市监中原所"
        assert agencies.agency_of_user(s, "supervisor").code == "郑市监金水所"
