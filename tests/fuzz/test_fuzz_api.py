"""Every ``/api/v1`` endpoint with hostile JSON bodies (any JSON value: huge integers, deep nesting, long strings,
unicode; and text that is not JSON) and hostile query arguments and path values: never a server error, every
refusal a JSON 4xx with a message, and a 400 or 422 names the field at fault — the endpoints are taken from the
app's own URL map, so a new one is fuzzed too."""
from __future__ import annotations

import json

from hypothesis import given, note
from hypothesis import strategies as st

from tests.fuzz.strategies import EDGE_INTS, EDGE_TEXT, fuzz_settings, json_bodies, raw_bodies
from tests.fuzz.support import refusal

#: the body fields each endpoint reads (the strategies mostly send these)
BODY_KEYS = {"/api/v1/instances": ("process_id", "business_key", "data"), "/api/v1/score": ("factors",),
             "/api/v1/tasks/<int:task_id>/complete": ("data", "rev")}
QUERY_KEYS = ("scope", "process", "campaign", "entity", "due", "min_priority", "sort", "limit", "offset")
EXAMPLES_PER_ENDPOINT = 100
_query_values = st.one_of(st.text(max_size=30), st.sampled_from(EDGE_TEXT), st.sampled_from(EDGE_INTS).map(str),
                          st.integers().map(str), st.sampled_from(("all", "mine", "overdue", "priority", "1", "0")))


def api_rules(app) -> list:
    rules = [r for r in app.url_map.iter_rules() if r.rule.startswith("/api/v1/")
             and r.endpoint not in ("api.openapi", "api.docs")]
    assert len(rules) >= 8, [r.rule for r in rules]
    return sorted(rules, key=lambda r: r.rule)


def _path(rule, ids: dict, choice: int, text: str) -> str:
    """The rule's URL with, for each argument, a real value, a missing one or a huge number (``<int:…>``), or
    a real value and hostile text (others)."""
    url = rule.rule
    for name in rule.arguments:
        if f"<int:{name}>" in url:
            url = url.replace(f"<int:{name}>", str((ids[name], 0, 10 ** 30)[choice % 3]))
        else:
            url = url.replace(f"<{name}>", ids[name] if choice % 2 else (text or "x"))
    return url


def test_every_endpoint_with_random_json(app, client, officer_headers, new_task, tally):
    task_id = new_task()
    instance_id = client.get(f"/api/v1/tasks/{task_id}", headers=officer_headers).get_json()["instance_id"]
    ids = {"task_id": task_id, "instance_id": instance_id, "uscc": new_task.uscc}
    rules = api_rules(app)

    @fuzz_settings(EXAMPLES_PER_ENDPOINT)
    @given(body=st.data(), choice=st.integers(0, 5), text=st.text(max_size=30),
           query=st.dictionaries(st.sampled_from(QUERY_KEYS), _query_values, max_size=4))
    def run(rule_index, body, choice, text, query):
        rule = rules[rule_index]
        path = _path(rule, ids, choice, text)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            if method == "GET":
                note(f"GET {path} query={query!r}")
                r = client.get(path, query_string=query, headers=officer_headers)
                sent = query
            elif choice == 5:
                raw = body.draw(raw_bodies)
                note(f"POST {path} raw body {raw!r:.3000}")
                r = client.post(path, data=raw, content_type="application/json", headers=officer_headers)
                sent = ()  # not a JSON object: the refusal says so, there is no field to name
            else:
                value = body.draw(json_bodies(BODY_KEYS.get(rule.rule, ())))
                note(f"POST {path} json {value!r:.3000}")
                r = client.post(path, data=json.dumps(value), content_type="application/json",
                                headers=officer_headers)
                sent = value if isinstance(value, dict) else ()
            tally.answer(r.status_code)
            refusal(r, sent)
        tally.case()

    for i in range(len(rules)):
        run(i)
    # the run reached the endpoints' own checks, not only the doors in front of them
    assert {"200", "400", "404"} <= set(tally.answers), tally.answers
