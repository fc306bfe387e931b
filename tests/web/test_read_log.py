"""The read log over real HTTP: opening a dossier, an evidence file or an instance's history records who, what,
when, how and from where; a refused read records nothing; the auditors (only) see the log at ``/audit/reads``
with filters and pages; old reads are pruned, the audit chains never."""
from __future__ import annotations

import io
from datetime import timedelta

import pytest
import requests
from sqlalchemy import func, select

from engine.runtime import clock, reads
from engine.runtime.models import AuditEvent, ReadRecord
from engine.runtime.users import issue_token
from engine.runtime.worker import run_due
from engine.supervision import evidence
from engine.supervision.calendar import SHANGHAI
from scoring.models import Entity
from tests.supervision.test_inbox_service import deploy_task_processes, start_task


@pytest.fixture
def sample(web_env):
    rt = web_env.runtime
    with web_env.tx() as s:
        deploy_task_processes(rt, s, ("reads_task", {"form_id": "extension_request"}))
        entity = s.scalars(select(Entity).order_by(Entity.id).limit(1)).one()
        ht = start_task(rt, s, "reads_task", key=entity.uscc, due=clock.now() + timedelta(days=3))
        ev = evidence.store_upload(s, upload_dir=web_env.settings.upload_dir, max_bytes=10_000,
                                   stream=io.BytesIO(b"%PDF-1.4\n%%EOF\n"), filename="photo.pdf",
                                   instance_id=ht.instance_id, task_id=ht.id, uploaded_by="officer")
        s.flush()
        return {"uscc": entity.uscc, "evidence": ev.id, "instance": ht.instance_id}


def _reads(web_env) -> list[tuple]:
    with web_env.tx() as s:
        return [(r.actor, r.kind, r.ref, r.via, r.address)
                for r in s.scalars(select(ReadRecord).order_by(ReadRecord.id))]


def test_reads_are_recorded_and_refusals_are_not(http, web_env, sample):
    officer, auditor = http("officer"), http("auditor")
    assert officer.get(f"/inbox/entities/{sample['uscc']}").status_code == 200
    assert officer.get(f"/inbox/evidence/{sample['evidence']}").status_code == 200
    assert auditor.get(f"/audit/instances/{sample['instance']}").status_code == 200
    assert auditor.get(f"/audit/instances/{sample['instance']}/history.csv").status_code == 200
    assert http("designer").get(f"/inbox/entities/{sample['uscc']}").status_code == 403
    assert officer.get("/inbox/evidence/999999").status_code == 404
    assert _reads(web_env) == [
        ("officer", "dossier", sample["uscc"], "web", "127.0.0.1"),
        ("officer", "evidence", str(sample["evidence"]), "web", "127.0.0.1"),
        ("auditor", "instance", str(sample["instance"]), "web", "127.0.0.1"),
        ("auditor", "instance", str(sample["instance"]), "web", "127.0.0.1"),
    ]


def test_the_auditors_see_the_log_with_filters_and_pages(http, web_env, sample):
    officer = http("officer")
    for _ in range(3):
        officer.get(f"/inbox/entities/{sample['uscc']}")
    http("supervisor").get(f"/inbox/entities/{sample['uscc']}")
    auditor = http("auditor")
    page = auditor.get("/audit/reads")
    assert page.status_code == 200 and page.text.count('class="read-row"') == 4 and "企业档案" in page.text
    mine = auditor.get("/audit/reads", params={"user": "supervisor", "kind": "dossier", "ref": sample["uscc"]})
    assert mine.text.count('class="read-row"') == 1
    today = clock.now().astimezone(SHANGHAI).date().isoformat()  # the page reads dates in China time
    assert auditor.get("/audit/reads", params={"from": today, "to": today}).text.count('class="read-row"') == 4
    assert 'id="reads-empty"' in auditor.get("/audit/reads", params={"to": "2000-01-01"}).text
    assert auditor.get("/audit/reads", params={"kind": "password"}).status_code == 400
    assert auditor.get("/audit/reads", params={"page": "x"}).status_code == 400
    assert auditor.get("/audit/reads", params={"page": "9" * 30}).status_code == 400
    assert 'id="reads-empty"' in auditor.get("/audit/reads", params={"page": "2"}).text
    for role in ("officer", "supervisor", "admin", "designer"):
        assert http(role).get("/audit/reads").status_code == 403, role


def test_reads_by_api_token_say_so(web_env, live, sample):
    with web_env.tx() as s:
        token = issue_token(s, "officer", "reads", actor="admin")
    r = requests.get(f"{live}/inbox/evidence/{sample['evidence']}", headers={"Authorization": f"Bearer {token}"},
                     timeout=10)
    assert r.status_code == 200
    assert _reads(web_env)[-1][:4] == ("officer", "evidence", str(sample["evidence"]), "api")


def test_pruning_keeps_the_retention_and_never_touches_the_chains(web_env):
    assert web_env.settings.log_retention_days == 183
    now = clock.now()
    with web_env.tx() as s:
        chain_rows = s.scalar(select(func.count()).select_from(AuditEvent))
        for age in (400, 184, 182, 1):
            row = reads.record(s, "officer", "dossier", "X", via="cli")
            row.at = now - timedelta(days=age)
    with web_env.tx() as s:
        assert reads.prune_reads(s, now, 0) == 0  # 0: kept for ever
    report = run_due(web_env.runtime, web_env.factory, now=now)  # the worker's periodic run prunes
    assert report.reads_pruned == 2
    with web_env.tx() as s:
        ages = sorted((now - r.at).days for r in s.scalars(select(ReadRecord)))
        assert ages == [1, 182]
        assert s.scalar(select(func.count()).select_from(AuditEvent)) == chain_rows
    with web_env.tx() as s, pytest.raises(ValueError):
        reads.record(s, "officer", "password", "X", via="web")
