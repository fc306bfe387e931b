"""Task completion with random data for the task's form (each field absent, plausible or any hostile value; a
stale, missing or hostile ``rev``), through the JSON API and through the HTML form of the inbox: a completion, a
refusal naming the fields (422: ``field_errors`` in JSON, the error summary linking each field's input in HTML)
or another 4xx with a message — never a server error."""
from __future__ import annotations

import html
import json
import re

from hypothesis import given, note
from hypothesis import strategies as st
from werkzeug.datastructures import MultiDict

from forms.render import html_id
from tests.fuzz.conftest import sign_in
from tests.fuzz.strategies import (
    EDGE_TEXT,
    EXTENSION_REQUEST,
    VALID_EXTENSION_REQUEST,
    form_data,
    fuzz_settings,
    json_values,
)
from tests.fuzz.support import names_a_field, refusal

FIELDS = set(EXTENSION_REQUEST)
EXAMPLES = 250
_SUMMARY = re.compile(r'<div class="rf-error-summary".*?</div>', re.S)
_LINK = re.compile(r'href="#(f-[^"]*)"')
_MESSAGE = re.compile(r'<p class="error" role="alert">(.*?)</p>', re.S)


def _rev_of(client, headers: dict, task_id: int) -> int:
    r = client.get(f"/api/v1/tasks/{task_id}", headers=headers)
    assert r.status_code == 200, r.get_data(as_text=True)
    return r.get_json()["rev"]


def test_random_task_data_is_completed_or_refused_naming_fields(client, officer_headers, new_task, tally):
    state = {"task": new_task()}

    @fuzz_settings(EXAMPLES)
    @given(data=form_data(VALID_EXTENSION_REQUEST, EXTENSION_REQUEST),
           rev=st.one_of(st.just("current"), st.just("current"), st.just("absent"), json_values))
    def run(data, rev):
        task_id = state["task"]
        body = {"data": data}
        if rev == "current":
            body["rev"] = _rev_of(client, officer_headers, task_id)
        elif rev != "absent":
            body["rev"] = rev
        note(f"POST /api/v1/tasks/{task_id}/complete {body!r:.3000}")
        r = client.post(f"/api/v1/tasks/{task_id}/complete", data=json.dumps(body), content_type="application/json",
                        headers=officer_headers)
        tally.answer(r.status_code)
        err = refusal(r, body)
        if err is None:
            state["task"] = new_task()  # completed: the next examples need an open task
        elif r.status_code == 422:
            names = FIELDS | set(data)
            assert all(any(path == n or path.startswith((n + ".", n + "[")) for n in names)
                       for path in err["field_errors"]), err["field_errors"]
        tally.case()

    run()
    assert {"200", "422"} <= set(tally.answers), tally.answers  # completions and refusals both reached


#: a form field's name as a browser sends it: a field of the form, maybe with a path, or any name
_names = st.one_of(st.sampled_from(sorted(FIELDS)), st.builds(lambda f, s: f + s, st.sampled_from(sorted(FIELDS)),
                                                              st.sampled_from(("[0]", "[]", "[x][y]", "[", "]"))),
                   st.text(max_size=12))
_form_values = st.one_of(st.text(max_size=40), st.sampled_from(EDGE_TEXT), st.dates().map(str),
                         st.sampled_from(("approve", "reject", "10", "-1", "1" * 40)))
_good_form = {"received_on": "2026-03-02", "requested_until": "2026-04-01", "reason": "设备检修", "opinion": "同意",
              "decision": "approve", "extension_days": "10"}


def test_random_html_form_posts_are_completed_or_refused_naming_fields(client, new_task, tally):
    headers = sign_in(client, "officer")
    state = {"task": new_task()}

    @fuzz_settings(EXAMPLES // 2)
    @given(drop=st.lists(st.sampled_from(sorted(_good_form)), unique=True, max_size=3),
           pairs=st.lists(st.tuples(_names, _form_values), max_size=8),
           rev=st.one_of(st.just("current"), st.sampled_from(("", "0", "x", "-1", "9" * 30))))
    def run(drop, pairs, rev):
        task_id = state["task"]
        form = [(k, v) for k, v in _good_form.items() if k not in drop] + pairs
        current = str(_rev_of(client, {}, task_id)) if rev == "current" else rev
        note(f"POST /inbox/tasks/{task_id}?rev={current!r} form={form!r}")
        r = client.post(f"/inbox/tasks/{task_id}", query_string={"rev": current}, headers=headers,
                        data=MultiDict(form + [("csrf_token", headers["X-CSRF-Token"])]))
        tally.answer(r.status_code)
        assert r.status_code < 500, (r.status_code, r.get_data(as_text=True)[:2000])
        if r.status_code == 302:
            state["task"] = new_task()
        elif r.status_code == 422:  # the page again, its error summary linking the input of each field at fault
            summary = _SUMMARY.search(r.get_data(as_text=True))
            assert summary, "a 422 page without an error summary"
            links = [html.unescape(link) for link in _LINK.findall(summary.group(0))]
            ids = {html_id(name) for name in FIELDS | {k.split("[", 1)[0] for k, _ in pairs}}
            blank_name = any(not k.strip() for k, _ in pairs)  # an error without a field: no link to one
            assert links or blank_name, summary.group(0)[:2000]
            assert all(any(link == i or link.startswith(i + "-") for i in ids) for link in links), links
        else:
            assert 400 <= r.status_code < 500 and r.status_code != 422, r.status_code
            if r.status_code == 400:  # an error page whose message names what was wrong: the rev or a field
                message = _MESSAGE.search(r.get_data(as_text=True))
                assert message, r.get_data(as_text=True)[:2000]
                assert names_a_field({"message": html.unescape(message.group(1))}, ["rev", *(k for k, _ in pairs)]), \
                    message.group(1)
        tally.case()

    run()
    assert {"302", "422"} <= set(tally.answers), tally.answers
