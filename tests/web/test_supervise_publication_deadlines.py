"""The supervisor's dashboard lists the open deadlines of publication (engine/supervision/publication_deadlines.py)
over real HTTP: an unpublished result past its 20 working days, shown as escalated once the daily job ran."""
from __future__ import annotations

from datetime import timedelta

from engine.runtime import clock
from engine.supervision import publication
from engine.supervision.publication_deadlines import monitor_deadlines


def test_dashboard_lists_overdue_publications_and_their_escalation(web_env, http):
    with web_env.tx() as s:
        late = publication.record(s, kind="result", title="逾期检查结果样例", payload={},
                                  now=clock.now() - timedelta(days=60))
    sup = http("supervisor")
    page = sup.get("/supervise/")
    assert page.status_code == 200
    assert f'id="deadline-overdue-{late.id}"' in page.text and "逾期检查结果样例" in page.text
    row = page.text.split(f'id="deadline-overdue-{late.id}"')[1].split("</tr>")[0]
    assert "逾期未公示" in row and ">否<" in row
    with web_env.tx() as s:
        assert late.id in monitor_deadlines(s, clock.now()).publication_overdue
    row = sup.get("/supervise/").text.split(f'id="deadline-overdue-{late.id}"')[1].split("</tr>")[0]
    assert ">是<" in row
    assert http("officer").get("/supervise/").status_code == 403
