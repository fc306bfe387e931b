"""The authorization matrix: every route of the app × every role, with the expected status.

The expectations are written out here, independently of the decorators, and every route the app
registers must appear (a new route without a row fails ``test_every_route_is_in_the_matrix``).
Signed-in users get 200 where allowed (GET) or anything but 401/403 (POST with harmless data), 403
where not; anonymous visitors are sent to the sign-in page (pages) or get 401 JSON (API).
"""
from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from engine.runtime import clock
from engine.runtime.models import BackgroundJob
from engine.supervision import agencies, document_files, evidence, publication, signing
from scoring.models import Entity
from tests.supervision.test_inbox_service import deploy_task_processes, start_task
from tests.web.test_public_draws import publish_sample_draw

ROLES = ["anonymous", "designer", "officer", "team_leader", "supervisor", "auditor", "admin"]
EVERYONE = set(ROLES)
SIGNED_IN = EVERYONE - {"anonymous"}
WORKERS = {"officer", "team_leader"}
READERS = WORKERS | {"supervisor", "auditor"}
DESIGN_READERS = {"designer", "supervisor", "auditor"}
API_WORKERS = WORKERS | {"supervisor"}
#: the entity portal's pages for a business signed in with its access code: every role here (no entity session)
#: is sent to the portal's sign-in page, not refused
ENTITY = frozenset({"entity"})

#: (method, path template, roles allowed); ``{…}`` are filled from the sample objects below
MATRIX = [
    ("GET", "/", EVERYONE),
    ("GET", "/healthz", EVERYONE),
    ("GET", "/auth/login", EVERYONE),
    ("POST", "/auth/login", EVERYONE),
    ("POST", "/auth/logout", EVERYONE),
    ("POST", "/auth/lang/{lang}", EVERYONE),
    ("GET", "/auth/password", SIGNED_IN),
    ("POST", "/auth/password", SIGNED_IN),
    ("GET", "/auth/two-factor", SIGNED_IN),
    ("POST", "/auth/two-factor", SIGNED_IN),
    ("POST", "/auth/two-factor/reset/{user}", {"admin"}),
    # the inbox: officers, team leaders and supervisors (their approvals and reviews); the sample task
    # belongs to the officers' group, so a supervisor outside it is refused its page by the object check
    ("GET", "/inbox/", API_WORKERS),
    ("POST", "/inbox/claim", API_WORKERS),
    ("GET", "/inbox/tasks/{task}", WORKERS),
    ("POST", "/inbox/tasks/{task}", WORKERS),
    ("POST", "/inbox/tasks/{task}/claim", WORKERS),
    ("POST", "/inbox/tasks/{task}/unclaim", WORKERS),
    ("POST", "/inbox/tasks/{task}/delegate", WORKERS),
    ("POST", "/inbox/tasks/{task}/evidence", WORKERS),
    ("GET", "/inbox/evidence/{evidence}", READERS),
    ("GET", "/inbox/entities/{uscc}", READERS),
    ("POST", "/inbox/entities/{uscc}/portal-codes", WORKERS | {"supervisor"}),
    ("POST", "/inbox/entities/{uscc}/portal-codes/999999/revoke", WORKERS | {"supervisor"}),
    # designer
    ("GET", "/designer/", DESIGN_READERS),
    ("GET", "/designer/process/{process}/v1", DESIGN_READERS),
    ("GET", "/designer/process/{process}/v1.bpmn", DESIGN_READERS),
    ("GET", "/designer/file/{bpmn_file}", DESIGN_READERS),
    ("GET", "/designer/diff?process={process}&a=1&b=1", DESIGN_READERS),
    ("GET", "/designer/process/{process}/edit", {"designer"}),
    ("GET", "/designer/decision/{dmn_file}", {"designer"}),
    ("POST", "/designer/validate", {"designer"}),
    ("POST", "/designer/deploy", {"designer"}),
    ("POST", "/designer/simulate", {"designer", "supervisor"}),
    ("GET", "/designer/simulations", {"designer", "supervisor"}),
    # a simulation job is seen by the person who asked for it (the sample's: the designer) and administrators
    ("GET", "/designer/simulations/{simulation}", {"designer", "admin"}),
    ("GET", "/designer/simulations/{simulation}.json", {"designer", "admin"}),
    # auditor (read only)
    ("GET", "/audit/", {"auditor", "supervisor"}),
    ("GET", "/audit/instances/{instance}", {"auditor", "supervisor"}),
    ("GET", "/audit/instances/{instance}/at/1", {"auditor", "supervisor"}),
    ("GET", "/audit/instances/{instance}/diagram.xml", {"auditor", "supervisor"}),
    ("GET", "/audit/instances/{instance}/history.json", {"auditor", "supervisor"}),
    ("GET", "/audit/instances/{instance}/history.csv", {"auditor", "supervisor"}),
    ("GET", "/audit/reads", {"auditor"}),
    # supervisor
    ("GET", "/supervise/", {"supervisor"}),
    ("GET", "/supervise/hazards", {"supervisor"}),
    ("GET", "/supervise/campaigns", {"supervisor"}),
    ("GET", "/supervise/incidents", {"supervisor"}),
    ("POST", "/supervise/incidents/999999/retry", {"supervisor"}),
    ("POST", "/supervise/stranded/order/999999/close", {"supervisor"}),
    # admin
    ("GET", "/admin/", {"admin"}),
    ("GET", "/admin/groups", {"admin"}),
    ("GET", "/admin/audit", {"admin"}),
    ("POST", "/admin/audit/verify", {"admin"}),
    ("POST", "/admin/users", {"admin"}),
    ("GET", "/admin/users/officer2", {"admin"}),
    ("POST", "/admin/users/officer2/roles", {"admin"}),
    ("POST", "/admin/users/officer2/jurisdiction", {"admin"}),
    ("POST", "/admin/users/officer2/active", {"admin"}),
    ("POST", "/admin/users/officer2/password", {"admin"}),
    ("POST", "/admin/users/officer2/tokens", {"admin"}),
    ("POST", "/admin/tokens/999999/revoke", {"admin"}),
    # the entity portal (businesses sign in with a code; officers list what was kept for them)
    ("GET", "/portal/login", EVERYONE),
    ("POST", "/portal/login", EVERYONE),
    ("POST", "/portal/logout", EVERYONE),
    ("GET", "/portal/", ENTITY),
    ("GET", "/portal/submit/rectification_report", ENTITY),
    ("POST", "/portal/submit/rectification_report", ENTITY),
    ("GET", "/portal/receipts/P20260101-0000000", ENTITY),
    ("GET", "/portal/officer/submissions", API_WORKERS),
    ("POST", "/portal/officer/submissions/P20260101-0000000/handled", API_WORKERS),
    # public
    ("GET", "/public/", EVERYONE),
    ("GET", "/public/{publication}", EVERYONE),
    ("GET", "/public/feed.json", EVERYONE),
    ("GET", "/public/draws/", EVERYONE),
    ("GET", "/public/draws/{draw}", EVERYONE),
    ("GET", "/public/draws/{draw}.json", EVERYONE),
    ("GET", "/public/draws/{draw}/drawn.txt", EVERYONE),
    # it carries each entity's credit class: auditors only while classes are not public (the default)
    ("GET", "/public/draws/{draw}/population.csv", {"auditor"}),
    ("GET", "/public/draws/verifier.py", EVERYONE),
    ("GET", "/public/lists", EVERYONE),
    ("GET", "/public/lists.json", EVERYONE),
    # an official document's PDF: whoever may read the instance that issued it (the sample task's instance)
    ("GET", "/documents/{document}.pdf", READERS),
    # a case file (案卷) as one signed ZIP: whoever may read the instance (the sample task's)
    ("GET", "/documents/cases/{instance}.zip", READERS),
    # API (machine clients; browser sessions work too)
    ("GET", "/api/v1/openapi.json", EVERYONE),
    ("GET", "/api/v1/docs", EVERYONE),
    ("POST", "/api/v1/instances", API_WORKERS),
    ("GET", "/api/v1/instances/{instance}", API_WORKERS | {"auditor"}),
    ("GET", "/api/v1/instances/{instance}/history", API_WORKERS | {"auditor"}),
    ("GET", "/api/v1/tasks", API_WORKERS),
    # the sample task belongs to the officers' group: a supervisor outside it is refused by the object check
    ("GET", "/api/v1/tasks/{task}", WORKERS),
    ("POST", "/api/v1/tasks/{task}/claim", WORKERS),
    ("POST", "/api/v1/tasks/{task}/unclaim", WORKERS),
    ("POST", "/api/v1/tasks/{task}/complete", WORKERS),
    ("GET", "/api/v1/entities/{uscc}/score", READERS),
    ("POST", "/api/v1/score", READERS | {"designer"}),
]


def _rule_of(path: str) -> str:
    return path.split("?")[0]


@pytest.fixture
def samples(web_env):
    """One object of each kind the routes take: an open task of the officers' group on an entity, its
    instance, an evidence file, a published notice."""
    rt = web_env.runtime
    with web_env.tx() as s:
        deploy_task_processes(rt, s, ("matrix_task", {"form_id": "extension_request"}))
        entity = s.scalars(select(Entity).order_by(Entity.id).limit(1)).one()
        ht = start_task(rt, s, "matrix_task", key=entity.uscc, due=clock.now() + timedelta(days=3))
        ev = evidence.store_upload(s, upload_dir=web_env.settings.upload_dir, max_bytes=10_000,
                                   stream=io.BytesIO(b"%PDF-1.4\n%%EOF\n"), filename="photo.pdf",
                                   instance_id=ht.instance_id, task_id=ht.id, uploaded_by="officer")
        pub = publication.record(s, kind=publication.PUBLICATION_KINDS[0], title="抽查结果", payload={"x": 1},
                                 now=clock.now(), uscc=entity.uscc, publish=True)
        job = BackgroundJob(kind="simulation", owner="designer", status="queued", created_at=clock.now(),
                            params={"entities": 60, "seed": 7, "decisions": []})
        s.add(job)
        s.flush()
        draw = publish_sample_draw(s)
        agency = agencies.responsible_agency(s, entity.district)
        doc, _file = document_files.issue_signed(
            s, agency=agency, kind="inspection_record", signer=signing.load_signer(web_env.settings.keys_dir,
                                                                                   agency.code),
            instance_id=ht.instance_id, ref="matrix", uscc=entity.uscc, entity_name=entity.name,
            fields={"findings": "无"}, issued_by="officer")
        return {"draw": draw, "document": doc.id,
                "simulation": job.id, "task": ht.id, "instance": ht.instance_id, "uscc": entity.uscc, "evidence": ev.id,
                "publication": pub.id, "process": "entity_inspection", "bpmn_file": "entity_inspection.bpmn",
                "dmn_file": "route_by_risk.dmn", "lang": "en", "user": "officer2"}


def test_every_route_is_in_the_matrix(app):
    covered = {(m, _rule_of(p)) for m, p, _ in MATRIX}

    def pattern(rule: str) -> re.Pattern:
        return re.compile("^" + re.sub(r"<[^>]+>", "[^/]+", rule) + "$")

    missing = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            pat = pattern(rule.rule)
            if not any(m == method and pat.match(re.sub(r"\{[^}]+\}", "x", p)) for m, p in covered):
                missing.append(f"{method} {rule.rule}")
    assert not missing, "routes without a row in the authorization matrix: " + ", ".join(missing)


@pytest.mark.parametrize("role", ROLES)
def test_matrix(role, http, samples):
    user = http(None) if role == "anonymous" else http(role)
    wrong = []
    for method, template, allowed in MATRIX:
        path = template.format(**samples)
        if method == "GET":
            r = user.get(path)
        else:
            if path in ("/auth/logout", "/auth/login"):
                continue  # would end or replace this session (and its CSRF token); see test_shell.py
            r = user.post(path, {})
        is_api = path.startswith("/api/")
        if allowed is ENTITY:
            ok = r.status_code == 302 and "/portal/login" in r.headers.get("Location", "")
        elif role in allowed:
            ok = r.status_code == 200 if method == "GET" and not (path == "/" ) else r.status_code not in (401, 403)
            ok = ok and r.status_code < 500
            if path == "/":
                ok = r.status_code in (200, 302)
        elif role == "anonymous":
            ok = r.status_code == 401 if is_api else (r.status_code == 302 and "/auth/login" in r.headers["Location"])
        else:
            ok = r.status_code == 403
        if not ok:
            wrong.append(f"{method} {path} → {r.status_code} (expected {'allowed' if role in allowed else 'refused'})")
    assert not wrong, f"{role}:\n" + "\n".join(wrong)
