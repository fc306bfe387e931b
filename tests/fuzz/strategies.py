"""Hostile-input strategies shared by the fuzz tests and ``bench/security.py``: JSON values (huge integers, deep
nesting, long strings, any unicode), task data for a form, mutated BPMN/DMN text and CSV registry files.

The settings profile ``regflow-fuzz`` is derandomized (the same examples on every run, CI or not), keeps no
example database and has no deadline; each test caps its examples with :func:`fuzz_settings`, which
``REGFLOW_FUZZ_SCALE`` multiplies (``bench/security.py --scale``). Hypothesis' caches (unicode tables) go to the
temporary directory, never into the work tree.
"""
from __future__ import annotations

import csv
import io
import os
import re
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir

set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "regflow-hypothesis")
PROFILE = "regflow-fuzz"
SCALE_ENV = "REGFLOW_FUZZ_SCALE"
#: no shrinking: a failing example is reported as found (shrinking a mutated BPMN file can take minutes)
settings.register_profile(PROFILE, derandomize=True, database=None, deadline=None, print_blob=False,
                          suppress_health_check=list(HealthCheck), phases=(Phase.explicit, Phase.generate),
                          report_multiple_bugs=False)


def fuzz_settings(max_examples: int) -> settings:
    """The fuzz profile with ``max_examples`` examples, times ``REGFLOW_FUZZ_SCALE`` when set."""
    scale = float(os.environ.get(SCALE_ENV) or 1)
    return settings(settings.get_profile(PROFILE), max_examples=max(1, round(max_examples * scale)))


# ------------------------------------------------------------------------------------------- JSON values
EDGE_INTS = (2 ** 31, 2 ** 53 + 1, 2 ** 63 - 1, 2 ** 63, -(2 ** 63) - 1, 2 ** 64, 10 ** 30, -(10 ** 40), 10 ** 300)
EDGE_TEXT = ("", " ", "\x00", "0", "-1", "1e309", "NaN", "null", "true", "[]", "{}", "<script>", "../../etc/passwd",
             "'; DROP TABLE x; --", "\u202e", "\ud7ff", "𠀀" * 3, "a" * 5000, "2026-02-30", "9999-12-31", "0000-01-01",
             "2026-10-09T25:61:00", "P99999999D", "%s%s%n", "{{7*7}}")


def _deep(leaf, depth: int, as_object: bool):
    for _ in range(depth):
        leaf = {"a": leaf} if as_object else [leaf]
    return leaf


scalars = st.one_of(
    st.none(), st.booleans(),
    st.integers(min_value=-(2 ** 70), max_value=2 ** 70), st.sampled_from(EDGE_INTS),
    st.floats(allow_nan=False, allow_infinity=False), st.sampled_from((1e308, -0.0, 5e-324, 1.5)),
    st.text(max_size=40), st.sampled_from(EDGE_TEXT),
)
#: a long string, built cheaply (one character repeated)
long_strings = st.builds(lambda ch, n: ch * n, st.characters(), st.integers(1_000, 200_000))
#: nesting from shallow to far deeper than the API accepts
deep_values = st.builds(_deep, scalars, st.integers(1, 300), st.booleans())
_nested = st.recursive(
    st.one_of(scalars, long_strings),
    lambda kids: st.one_of(st.lists(kids, max_size=6), st.dictionaries(st.text(max_size=20), kids, max_size=6)),
    max_leaves=24,
)
#: any JSON value; one in four nested deeply
json_values = st.one_of(_nested, _nested, _nested, deep_values)


def json_objects(known_keys: tuple[str, ...]) -> st.SearchStrategy[dict]:
    """A JSON object whose keys are mostly ``known_keys`` (some random), with hostile values."""
    keys = st.one_of(st.sampled_from(known_keys), st.text(max_size=12)) if known_keys else st.text(max_size=12)
    return st.dictionaries(keys, json_values, max_size=max(4, len(known_keys) + 2))


def json_bodies(known_keys: tuple[str, ...]) -> st.SearchStrategy:
    """A request body: mostly an object with the known keys, sometimes any JSON value at all."""
    return st.one_of(json_objects(known_keys), json_objects(known_keys), json_values)


#: raw bodies that are not valid JSON, or JSON Python reads but no standard allows
raw_bodies = st.one_of(
    st.sampled_from(("", "{", "[" * 100_000, '{"a": NaN}', '{"a": Infinity}', '{"a": 1e999}', "\x00",
                     '{"a": "\\ud800"}', "{" * 2000 + "}" * 2000, '{"rev": 1' + "0" * 5000 + "}")),
    st.text(max_size=200),
)


# --------------------------------------------------------------------------------------------- task data
def form_data(valid: dict, fields: dict[str, st.SearchStrategy]) -> st.SearchStrategy[dict]:
    """Task data for a form: ``valid`` data with none, one or several fields changed — absent, another plausible
    value or any hostile JSON value — and sometimes extra keys."""
    change = st.one_of(st.just(...), *(s for s in fields.values()), json_values)

    @st.composite
    def build(draw) -> dict:
        data = dict(valid)
        changed = st.lists(st.sampled_from(sorted(fields)), unique=True, min_size=1, max_size=len(fields))
        for name in draw(st.one_of(st.just([]), changed)):
            value = draw(st.one_of(st.just(...), fields[name], json_values)) if name in fields else draw(change)
            if value is ...:
                data.pop(name, None)
            else:
                data[name] = value
        if draw(st.integers(0, 4)) == 0:
            data.update(draw(st.dictionaries(st.text(max_size=12), json_values, min_size=1, max_size=2)))
        return data
    return build()


dates = st.one_of(st.dates().map(str), st.sampled_from(("2026-10-09", "2026-02-29", "2026-13-01", "20261009")))
#: the extension-request form (forms/definitions/extension_request.yaml): valid data, and plausible values
VALID_EXTENSION_REQUEST = {"received_on": "2026-03-02", "reason": "设备待采购", "requested_until": "2026-04-01",
                           "decision": "approve", "extension_days": 5, "opinion": "同意延期一次"}
EXTENSION_REQUEST = {
    "received_on": dates, "requested_until": dates, "reason": st.text(max_size=2100),
    "opinion": st.text(max_size=50), "decision": st.sampled_from(("approve", "reject", "maybe")),
    "extension_days": st.one_of(st.integers(-5, 40), st.sampled_from(EDGE_INTS), st.just("10")),
    "attachments": st.lists(st.one_of(st.integers(), st.text(max_size=10), st.fixed_dictionaries(
        {"id": st.integers()})), max_size=25),
}


# ------------------------------------------------------------------------------------------ BPMN / DMN
_ATTR_NAMES = ("id", "name", "sourceRef", "targetRef", "isExecutable", "value", "typeRef", "hitPolicy",
               "attachedToRef", "calledElement", "default", "x", "bogus", "{http://example.org/x}y")
_BAD_EXPRESSIONS = ("1 +", "__import__('os').system('x')", "(" * 200 + "1" + ")" * 200, "a" * 10_000,
                    "x.__class__.__mro__", "lambda: 0", "yield 1", "[i for i in range(10**12)]", "'\x00'", "",
                    "> 3", "\"unterminated", "not", "2 ** 2 ** 100", "risk_class == 'A'", "- - -")


def _mutate(xml: str, ops: list[tuple[int, int, str, str]]) -> str:
    """Apply text-level mutations at element boundaries: each op (kind, position, attribute, text)."""
    for kind, pos, attr, text in ops:
        tags = [m.end() - 1 for m in re.finditer(r"<[A-Za-z][^<>]*?(/?)>", xml)]
        if not tags:
            break
        at = tags[pos % len(tags)]
        if xml[at - 1] == "/":
            at -= 1
        value = text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")
        if kind == 0:  # an attribute (new, or a second one with the same name: malformed)
            xml = f'{xml[:at]} {attr}="{value}"{xml[at:]}'
        elif kind == 1:  # an id removed
            start = xml.rfind("<", 0, at)
            xml = xml[:start] + re.sub(r'\sid="[^"]*"', "", xml[start:at], count=1) + xml[at:]
        elif kind == 2:  # a condition or script body replaced
            xml = re.sub(r"(<bpmn:(?:conditionExpression|script|text)[^>]*>)[^<]*", lambda m: m.group(1) + value,
                         xml, count=1 + pos % 3)
            xml = re.sub(r"(<(?:text|inputEntry|outputEntry)[^>]*>\s*<text>)[^<]*", lambda m: m.group(1) + value,
                         xml, count=1 + pos % 3)
        elif kind == 3:  # cut short
            xml = xml[: pos % max(len(xml), 1)]
        elif kind == 4:  # raw text spliced in (may break the XML)
            xml = xml[:at] + text + xml[at:]
        else:  # an element duplicated (duplicate ids)
            start = xml.rfind("<", 0, at)
            end = xml.find(">", at) + 1
            xml = xml[:end] + xml[start:end].replace(">", "/>", 1).replace("//>", "/>") + xml[end:]
    return xml


_texts = st.one_of(st.text(max_size=30), st.sampled_from(_BAD_EXPRESSIONS), long_strings.map(lambda s: s[:20_000]))
_ops = st.lists(st.tuples(st.integers(0, 5), st.integers(0, 10_000), st.sampled_from(_ATTR_NAMES), _texts),
                min_size=1, max_size=4)


def mutated(sources: tuple[str, ...]) -> st.SearchStrategy[str]:
    """One of ``sources`` with one to four mutations."""
    return st.builds(_mutate, st.sampled_from(sources), _ops)


# ------------------------------------------------------------------------------------------------- CSV
#: per import kind: its columns (required first) and one valid row for the demo data of ``web_env``
CSV_KINDS = {
    "departments": (("code", "name"), ("amr", "市场监管")),
    "skills": (("code", "name"), ("general", "通用")),
    "entities": (("uscc", "name", "industry_section", "district", "entity_type", "employee_count",
                  "annual_report_late_3y", "factors_as_of"),
                 ("91410105341672112H", "药房", "F", "410105", "llc", "3", "0", "2026-01-01")),
    "inspectors": (("code", "name", "department", "cert_no", "cert_expires", "skills", "region", "is_expert",
                    "leader_eligible"), ("X01", "甲", "amr", "C1", "2030-01-01", "general", "410105", "false", "true")),
    "leaves": (("inspector", "start_date", "end_date", "reason"), ("I001", "2026-01-01", "2026-01-02", "年假")),
    "conflicts": (("inspector", "uscc", "reason"), ("I001", "91410105341672112H", "亲属")),
    "items": (("code", "name", "legal_basis", "department", "industries", "required_skill", "ratio", "frequency",
               "method", "clause_code", "clause_text", "clause_basis"),
              ("T-1", "检查", "某法", "amr", "F", "general", "0.05", "annual", "on_site", "C1", "条款一",
               "某法第一条")),
}
_cells = st.one_of(st.text(max_size=20), st.sampled_from(EDGE_TEXT),
                   st.integers(-(2 ** 80), 2 ** 80).map(str), st.sampled_from(("1e999", "nan", "-inf", "１２")),
                   st.text(alphabet=",\"\n\r;；\x00", max_size=6))


@st.composite
def csv_files(draw, kind: str) -> str:
    """A CSV file for ``kind``: its header (maybe reordered, short of a column or with an extra one) and rows of
    valid cells mutated at random; sometimes raw text."""
    columns, good = CSV_KINDS[kind]
    header = list(columns)
    if draw(st.integers(0, 9)) == 0:
        header.pop(draw(st.integers(0, len(header) - 1)))
    if draw(st.integers(0, 9)) == 0:
        header.append(draw(st.sampled_from(("colour", "", columns[0], "\ufeffcode"))))
    rows = []
    for _ in range(draw(st.integers(0, 6))):
        row = [good[columns.index(h)] if h in columns else "x" for h in header]
        for _ in range(draw(st.integers(0, 3))):
            row[draw(st.integers(0, max(len(row) - 1, 0)))] = draw(_cells) if row else ""
        if draw(st.integers(0, 9)) == 0:
            row = row[: draw(st.integers(0, len(row)))]
        rows.append(row)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    text = out.getvalue()
    if draw(st.integers(0, 9)) == 0:
        cut = draw(st.integers(0, len(text)))
        text = text[:cut] + draw(st.text(max_size=20)) + text[cut:]
    return text
