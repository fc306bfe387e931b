"""Loading definitions: strict validation of the YAML itself, with file, line and key in every error."""
from __future__ import annotations

import hashlib
import os
import shutil

import pytest

from forms.errors import FormDefinitionError, UnknownForm
from forms.loader import FormRegistry, load_form_file, parse_form_text

from .conftest import DATA


def line_of(path, needle: str, nth: int = 1) -> int:
    hits = [i for i, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if needle in text]
    return hits[nth - 1]


def issues_of(name: str):
    path = DATA / "bad" / name
    with pytest.raises(FormDefinitionError) as exc:
        load_form_file(path)
    for issue in exc.value.issues:
        assert issue.file == str(path)
    return path, exc.value.issues


def find(issues, key: str):
    hits = [i for i in issues if i.key == key]
    assert hits, f"no issue for {key!r} in {[str(i) for i in issues]}"
    return hits[0]


def test_sample_loads(sample):
    assert sample.id == "sample" and sample.version == 3
    assert sample.title.get("zh") == "示例表单" and sample.title.get("en") == "Sample form"
    assert [f.type for f in sample.fields][:9] == ["text", "text", "textarea", "integer", "number", "bool", "bool",
                                                   "date", "datetime"]
    assert sample.field("level").default == "normal"
    assert sample.field("notify").default is True
    checks = sample.field("checks")
    assert checks.required is True  # checklists are required unless said otherwise
    assert [c.code for c in checks.clauses] == ["GEN-01", "4.2.1"]
    assert checks.clauses[1].text.get("en") == "执业药师在岗"  # plain clause text: Chinese in both languages
    assert checks.clauses[1].basis == ("《药品经营质量管理规范》", "《药品管理法》")
    assert sample.field("runtime_checks").clauses is None


def test_syntax_error_names_file_and_line():
    path, issues = issues_of("syntax_error.yaml")
    assert len(issues) == 1 and "YAML syntax error" in issues[0].message
    assert issues[0].line in (3, 4)
    assert str(path) in str(issues[0])


def test_unknown_key():
    path, issues = issues_of("unknown_key.yaml")
    issue = find(issues, "fields[0].colour")
    assert issue.line == line_of(path, "colour: red")
    assert "unknown key 'colour'" in issue.message
    assert f"{path}:{issue.line}: fields[0].colour: unknown key" in str(FormDefinitionError(issues))


def test_unknown_type():
    path, issues = issues_of("unknown_type.yaml")
    issue = find(issues, "fields[1].type")
    assert issue.line == line_of(path, "type: signature")
    assert "signature" in issue.message and "checklist" in issue.message


def test_duplicate_field_name():
    path, issues = issues_of("duplicate_field.yaml")
    issue = find(issues, "fields[2].name")
    assert issue.line == line_of(path, "name: a", nth=2)
    assert "duplicate field name 'a'" in issue.message


def test_duplicate_yaml_key_is_not_silently_overwritten():
    path, issues = issues_of("duplicate_key.yaml")
    issue = find(issues, "fields[0].required")
    assert issue.line == line_of(path, "required: false")
    assert f"first on line {line_of(path, 'required: true')}" in issue.message


def test_bad_option_lists():
    path, issues = issues_of("bad_options.yaml")
    dup = find(issues, "fields[0].options[1].value")
    assert "duplicate option value 'low'" in dup.message and dup.line == line_of(path, "Low 2")
    num = find(issues, "fields[0].options[2].value")
    assert "must be strings" in num.message and num.line == line_of(path, "value: 1")
    missing = find(issues, "fields[0].options[3]")
    assert "missing required key 'label'" in missing.message and missing.line == line_of(path, "value: high")
    empty = find(issues, "fields[1].options")
    assert "non-empty list" in empty.message and empty.line == line_of(path, "options: []")


def test_bad_visible_if():
    path, issues = issues_of("bad_visible_if.yaml")
    later = find(issues, "fields[0].visible_if.field")
    assert "not a field defined before this one" in later.message
    assert later.line == line_of(path, "visible_if: {field: decision, equals")
    value = find(issues, "fields[2].visible_if.in")
    assert "'maybe' is not an option" in value.message
    both = find(issues, "fields[3].visible_if")
    assert "exactly one of" in both.message


def test_bad_values():
    path, issues = issues_of("bad_values.yaml")
    assert "greater than max" in find(issues, "fields[0].min").message
    assert "invalid regular expression" in find(issues, "fields[1].pattern").message
    default = find(issues, "fields[2].default")
    assert "invalid default" in default.message and "maybe" in default.message
    assert default.line == line_of(path, "default: maybe")
    assert "missing required key 'en'" in find(issues, "fields[3].label").message
    assert "exactly one of 'clauses'" in find(issues, "fields[4]").message
    assert "not a valid identifier" in find(issues, "fields[5].name").message


def test_id_must_match_file_name_and_version_positive():
    path, issues = issues_of("wrong_id.yaml")
    assert "does not match the file name" in find(issues, "id").message
    assert find(issues, "id").line == 1
    assert "≥ 1" in find(issues, "version").message


@pytest.mark.parametrize("text, key, fragment", [
    ("", "", "empty"),
    ("- a\n- b\n", "", "must be a mapping"),
    ("id: x\nversion: 1\ntitle: {zh: 甲, en: A}\nfields: []\n", "fields", "non-empty list"),
    ("id: x\nversion: 1\ntitle: {zh: 甲, en: A}\nfields:\n  - <<: {name: a}\n", "fields[0]", "merge keys"),
    ("id: x\nversion: 1\ntitle: {zh: 甲, en: A}\nfields:\n  - {name: csrf_token, type: text, label: {zh: a, en: a}}\n",
     "fields[0].name", "reserved"),
    ("id: x\nversion: 1\ntitle: {zh: 甲, en: A}\nfields:\n  - name: t\n    type: table\n    label: {zh: a, en: a}\n"
     "    columns: [{name: c, type: checklist, label: {zh: a, en: a}, clauses_from: x}]\n",
     "fields[0].columns[0].type", "unknown field type 'checklist'"),
    ("id: x\nversion: 1\ntitle: {zh: 甲, en: A}\nfields:\n"
     "  - {name: a, type: text, label: {zh: a, en: a}, options: []}\n",
     "fields[0].options", "unknown key 'options'"),
    ("id: x\nversion: 1\ntitle: {zh: 是, en: yes}\nfields:\n  - {name: a, type: text, label: {zh: a, en: a}}\n",
     "title.en", "quote it"),
    ("id: x\nversion: 1\ntitle: {zh: 甲, en: A}\nfields:\n  - {name: b, type: checklist, label: {zh: a, en: a},"
     " clauses: [{code: 'A 1', text: t}]}\n", "fields[0].clauses[0].code", "not a valid clause code"),
])
def test_inline_definition_errors(text, key, fragment):
    with pytest.raises(FormDefinitionError) as exc:
        parse_form_text(text, "inline.yaml")
    issue = find(exc.value.issues, key)
    assert fragment in issue.message
    assert issue.file == "inline.yaml"


def test_registry_ids_hash_and_cache(tmp_path):
    shutil.copy(DATA / "good" / "sample.yaml", tmp_path / "sample.yaml")
    (tmp_path / "README.txt").write_text("not a form")
    reg = FormRegistry(tmp_path)
    assert reg.ids() == ["sample"]
    first = reg.get("sample")
    assert reg.get("sample") is first  # cached
    assert reg.form_hash("sample") == hashlib.sha256((tmp_path / "sample.yaml").read_bytes()).hexdigest()
    assert reg.form_hash("nope") is None
    assert reg.form_hash("../etc/passwd") is None
    with pytest.raises(UnknownForm):
        reg.get("nope")

    path = tmp_path / "sample.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("version: 3", "version: 4"), encoding="utf-8")
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    second = reg.get("sample")
    assert second is not first and second.version == 4
    assert reg.form_hash("sample") == hashlib.sha256(path.read_bytes()).hexdigest() != first.sha256


def test_registry_reports_broken_files(tmp_path):
    shutil.copy(DATA / "bad" / "unknown_key.yaml", tmp_path / "unknown_key.yaml")
    reg = FormRegistry(tmp_path)
    with pytest.raises(FormDefinitionError):
        reg.form_hash("unknown_key")  # a broken form cannot be deployed
    assert [i.key for i in reg.check_all()] == ["fields[0].colour"]
