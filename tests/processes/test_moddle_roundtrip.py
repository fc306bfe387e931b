"""Every BPMN/DMN file in processes/ survives the designer. Each file goes through
bpmn-moddle / dmn-moddle (what bpmn-js and dmn-js import and export with) with the designer's
spiffworkflow descriptor, via ``tests/support/moddle_roundtrip.mjs``; the result must read without
warnings, keep every element id and extension element, and parse to the same specs."""
from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from lxml import etree

from engine.bootstrap import build_runtime
from engine.runtime.modeling import diff_xml
from engine.runtime.parser import parse_sources
from tests.conftest import IN_CI, ROOT

PROCESSES = ROOT / "processes"
SCRIPT = ROOT / "tests" / "support" / "moddle_roundtrip.mjs"
SPIFF_NS = "http://spiffworkflow.org/bpmn/schema/1.0/core"
BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
DI_NS = "http://www.omg.org/spec/BPMN/20100524/DI"
FILES = sorted(p.name for p in PROCESSES.iterdir() if p.suffix in (".bpmn", ".dmn"))

def _node_or_skip() -> str:
    node = shutil.which("node")
    missing = []
    if node is None:
        missing.append("node is not installed")
    for pkg in ("bpmn-moddle", "dmn-moddle"):
        if not (ROOT / "node_modules" / pkg).is_dir():
            missing.append(f"node_modules/{pkg} is missing (run npm install)")
    if missing:
        if IN_CI:
            pytest.fail("; ".join(missing))
        pytest.skip("; ".join(missing))
    return node


def run_roundtrip(*paths) -> dict[str, dict]:
    proc = subprocess.run([_node_or_skip(), str(SCRIPT), *map(str, paths)], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    return {r["file"].rsplit("/", 1)[-1]: r for r in json.loads(proc.stdout)}


@pytest.fixture(scope="module")
def results() -> dict[str, dict]:
    return run_roundtrip(*(PROCESSES / f for f in FILES))


def _tree(text: str):
    return etree.fromstring(text.encode("utf-8"))


def _ids(root) -> set[tuple[str, str]]:
    return {(etree.QName(el).localname, el.get("id")) for el in root.iter() if isinstance(el.tag, str) and el.get("id")
            and not el.tag.startswith(f"{{{SPIFF_NS}}}")}


def _extensions(root) -> list[tuple]:
    return [(etree.QName(el).localname, tuple(sorted(el.attrib.items())), (el.text or "").strip())
            for el in root.iter(f"{{{SPIFF_NS}}}*")]


@pytest.mark.parametrize("name", FILES)
def test_file_reads_without_warnings_or_unknown_elements(results, name):
    result = results[name]
    assert result["warnings"] == [], f"{name}: {result['warnings']}"
    assert result["unknown"] == [], f"{name}: elements no descriptor knows: {result['unknown']}"


@pytest.mark.parametrize("name", FILES)
def test_roundtrip_keeps_every_id_and_extension(results, name):
    before = _tree((PROCESSES / name).read_text(encoding="utf-8"))
    after = _tree(results[name]["xml"])
    assert _ids(after) == _ids(before)
    assert _extensions(after) == _extensions(before)
    if name.endswith(".bpmn"):  # the designer's diff sees no change either, layout included

        assert diff_xml((PROCESSES / name).read_text(encoding="utf-8"), results[name]["xml"]) == []


def test_roundtrip_parses_to_the_same_specs(results):
    serializer = build_runtime().serializer
    original = parse_sources({f: (PROCESSES / f).read_text(encoding="utf-8") for f in FILES})
    exported = parse_sources({f: results[f]["xml"] for f in FILES})
    assert sorted(exported.executable) == sorted(original.executable)
    for pid in original.executable:
        assert serializer.spec_to_json(*exported.specs[pid]) == serializer.spec_to_json(*original.specs[pid]), pid


def test_undeclared_extensions_are_reported(tmp_path):
    """The checks can fail: an undeclared spiffworkflow element is a warning (bpmn-js would drop it on
    save) and an element of a foreign namespace is listed as unknown."""
    text = (PROCESSES / "entity_inspection.bpmn").read_text(encoding="utf-8").replace(
        "<spiffworkflow:calledDecisionId>", "<spiffworkflow:madeUpThing>x</spiffworkflow:madeUpThing>"
        '<other:note xmlns:other="http://example.org/other">y</other:note><spiffworkflow:calledDecisionId>', 1)
    bad = tmp_path / "bad.bpmn"
    bad.write_text(text, encoding="utf-8")
    result = run_roundtrip(bad)["bad.bpmn"]
    assert len(result["warnings"]) == 1 and "spiffworkflow:madeUpThing" in result["warnings"][0]
    assert result["unknown"] == ["other:note"]


@pytest.mark.parametrize("name", [f for f in FILES if f.endswith(".bpmn")])
def test_every_flow_element_has_diagram_information(name):
    """bpmn-js shows and edits only elements with diagram information."""
    root = _tree((PROCESSES / name).read_text(encoding="utf-8"))
    drawn = {el.get("bpmnElement") for el in root.iter(f"{{{DI_NS}}}BPMNShape", f"{{{DI_NS}}}BPMNEdge")}
    flow_nodes = {el.get("id") for proc in root.iter(f"{{{BPMN_NS}}}process", f"{{{BPMN_NS}}}subProcess")
                  for el in proc if isinstance(el.tag, str) and el.get("id")
                  and etree.QName(el).localname not in ("laneSet", "dataObject", "property", "ioSpecification")}
    assert sorted(flow_nodes - drawn) == []
