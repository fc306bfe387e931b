"""The signed PDF of an official document over real HTTP: whoever may read the instance that issued it gets it
(``policy.check_read_document``), others 403, no such document 404; linked from the task and instance pages."""
from __future__ import annotations

import io
import json
import zipfile

from sqlalchemy import select

from engine.runtime.deploy import deploy, read_paths
from engine.runtime.models import HumanTask, ReadRecord
from engine.supervision import agencies, case_file, document_files, signing
from scoring.models import Entity
from tests.conftest import DATA


def _issue(web_env, *, with_instance: bool) -> tuple[int, int | None, bytes]:
    """A rectification notice of the demo's first entity; with an instance of ``minimal`` started by officer."""
    rt = web_env.runtime
    with web_env.tx() as s:
        iid = None
        if with_instance:
            deploy(rt, s, read_paths([DATA / "engine" / "minimal.bpmn"]), "designer")
            iid = rt.start(s, "minimal", data={"amount": 9}, actor="officer").instance.id
        entity = s.scalars(select(Entity).order_by(Entity.id)).first()
        agency = agencies.responsible_agency(s, entity.district)
        doc, f = document_files.issue_signed(
            s, agency=agency, kind="rectification_notice", signer=signing.load_signer(web_env.settings.keys_dir,
                                                                                      agency.code),
            instance_id=iid, ref="web-test", uscc=entity.uscc, entity_name=entity.name,
            fields={"findings": "许可证未公示", "legal_basis": "《食品安全法》", "deadline_days": 5},
            issued_by="officer")
        return doc.id, iid, f.pdf


def test_the_pdf_is_served_to_who_may_read_its_instance(web_env, http):
    doc_id, iid, pdf = _issue(web_env, with_instance=True)
    officer = http("officer")
    r = officer.get(f"/documents/{doc_id}.pdf")
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/pdf" and r.content == pdf
    assert "filename*=UTF-8''%E8%B4%A3%E4%BB%A4" in r.headers["Content-Disposition"]  # 责令改正通知书-…
    assert r.headers["Cache-Control"] == "private, no-store"
    assert http("auditor").get(f"/documents/{doc_id}.pdf").status_code == 200
    stranger = http("officer", username="officer2")  # an officer who never worked on the instance
    r = stranger.get(f"/documents/{doc_id}.pdf", headers={"Accept": "application/json"})
    assert r.status_code == 403 and "未办理过流程实例" in r.json()["error"]["message"]
    assert http("designer").get(f"/documents/{doc_id}.pdf").status_code == 403  # no reader role at all
    anonymous = http(None).get(f"/documents/{doc_id}.pdf")
    assert anonymous.status_code in (302, 401)
    assert officer.get("/documents/999999.pdf").status_code == 404
    assert officer.get("/documents/99999999999999999999999.pdf").status_code == 404
    assert officer.get("/documents/abc.pdf").status_code == 404
    # the PDF names the party: each download is in the read log (by number), a refused one is not
    with web_env.tx() as s:
        number = document_files.documents.get_document_by_id(s, doc_id).number
        reads = [(r.actor, r.ref, r.via) for r in s.scalars(select(ReadRecord).where(ReadRecord.kind == "document")
                                                             .order_by(ReadRecord.id))]
    assert reads == [("officer", number, "web"), ("auditor", number, "web")]


def test_task_and_instance_pages_link_the_document(web_env, http):
    doc_id, iid, _pdf = _issue(web_env, with_instance=True)
    with web_env.tx() as s:
        task_id = s.scalar(select(HumanTask.id).where(HumanTask.instance_id == iid, HumanTask.status == "open"))
    link = f'href="/documents/{doc_id}.pdf"'
    page = http("supervisor").get(f"/inbox/tasks/{task_id}")  # minimal: amount 9 goes to the supervisors
    assert page.status_code == 200 and link in page.text and "法律文书" in page.text
    page = http("auditor").get(f"/audit/instances/{iid}")
    assert page.status_code == 200 and link in page.text


def test_a_document_outside_a_process_is_read_as_its_entitys_dossier(web_env, http):
    doc_id, _iid, pdf = _issue(web_env, with_instance=False)
    assert http("officer").get(f"/documents/{doc_id}.pdf").content == pdf
    assert http("designer").get(f"/documents/{doc_id}.pdf").status_code == 403


def test_the_case_file_is_served_to_who_may_read_its_instance_and_recorded(web_env, http):
    """The case file (案卷) of an instance as one signed ZIP that verifies against the keys folder; the export is
    in the read log; a stranger 403; linked beside the documents on the task and instance pages."""
    doc_id, iid, pdf = _issue(web_env, with_instance=True)
    r = http("officer").get(f"/documents/cases/{iid}.zip")
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/zip"
    assert r.headers["Content-Disposition"] == f'attachment; filename="case-file-{iid}.zip"'
    report = case_file.verify_bundle(r.content, web_env.settings.keys_dir)
    assert report.ok, report.problems
    with zipfile.ZipFile(io.BytesIO(r.content)) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        (item,) = [i for i in manifest["items"] if i["kind"] == "document"]
        assert zf.read(item["path"]) == pdf
    with web_env.tx() as s:
        reads = s.scalars(select(ReadRecord).where(ReadRecord.actor == "officer", ReadRecord.kind == "instance")).all()
        assert [(x.ref, x.via) for x in reads] == [(str(iid), "web")]
    stranger = http("officer", username="officer2")
    assert stranger.get(f"/documents/cases/{iid}.zip").status_code == 403
    assert http("designer").get(f"/documents/cases/{iid}.zip").status_code == 403
    assert http("officer").get("/documents/cases/999999.zip").status_code == 404
    page = http("auditor").get(f"/audit/instances/{iid}")
    assert page.status_code == 200 and f'href="/documents/cases/{iid}.zip"' in page.text
