"""The form-validation hook: a task with ``formId`` is completed only with data its form accepts."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from engine.bootstrap import form_hasher
from engine.errors import DefinitionError, FormValidationError
from engine.runtime.deploy import deploy, read_paths
from engine.runtime.models import AuditEvent, HumanTask, ProcessInstance
from tests.conftest import DATA


def _deploy(runtime, db, *paths):
    with db.tx() as s:
        return deploy(runtime, s, read_paths(list(paths)), "designer", form_hash=form_hasher(runtime.settings))


def test_invalid_form_data_is_rejected_and_nothing_changes(runtime, db, people):
    (d,) = _deploy(runtime, db, DATA / "engine" / "form_task.bpmn")
    with db.tx() as s:
        iid = runtime.start(s, "form_flow").instance.id
        ht = s.scalars(select(HumanTask).where(HumanTask.instance_id == iid)).one()
        assert ht.form_id == "extension_request" and len(ht.form_hash) == 64
        before = (s.get(ProcessInstance, iid).rev, s.scalar(select(func.count()).select_from(AuditEvent)))
    bad = {"received_on": "2026-13-01", "reason": "", "decision": "maybe", "surprise": 1}
    with pytest.raises(FormValidationError) as err, db.tx() as s:
        runtime.complete_task(s, ht.id, "alice", bad)
    fields = err.value.field_errors
    assert {"received_on", "reason", "decision", "surprise"} <= set(fields)
    with db.tx() as s:
        assert (s.get(ProcessInstance, iid).rev, s.scalar(select(func.count()).select_from(AuditEvent))) == before
        assert s.get(HumanTask, ht.id).status == "open"
    good = {"received_on": "2026-10-09", "reason": "设备到货延迟", "requested_until": "2026-10-30",
            "decision": "approve", "extension_days": 10, "opinion": "同意延期十个工作日"}
    with db.tx() as s:
        assert runtime.complete_task(s, ht.id, "alice", good).instance.status == "completed"


def test_deploy_rejects_unknown_form(runtime, db):
    with pytest.raises(DefinitionError) as err:
        _deploy(runtime, db, DATA / "engine" / "bad" / "unknown_form.bpmn")
    (issue,) = err.value.issues
    assert issue["element_id"] == "decide_extension" and issue["field"] == "formId"
    assert "no_such_form" in issue["message"]
