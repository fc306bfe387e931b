"""Names of processes and tasks in the UI's languages (``engine.runtime.labels``): read from the
``nameZh``/``nameEn`` properties of the deployed library, pools included, refreshed on deploy, and the
fallbacks (a form title for Chinese, else the BPMN name)."""
from __future__ import annotations

from lxml import etree

from engine.runtime import modeling
from engine.runtime.labels import Labels, labels_from_xml, localized_xml, pick
from tests.runtime.test_modeling import INSPECTION, PROCESSES, library  # noqa: F401 (fixture)

POOL_XML = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" id="d" targetNamespace="t">
  <bpmn:collaboration id="c">
    <bpmn:participant id="pool" name="Pool" processRef="p">
      <bpmn:extensionElements><spiffworkflow:properties>
        <spiffworkflow:property name="nameZh" value="泳池名" />
        <spiffworkflow:property name="nameEn" value="Pool name" />
      </spiffworkflow:properties></bpmn:extensionElements>
    </bpmn:participant>
  </bpmn:collaboration>
  <bpmn:process id="p" name="流程" isExecutable="true">
    <bpmn:extensionElements><spiffworkflow:properties>
      <spiffworkflow:property name="nameZh" value="流程自己的名称" />
    </spiffworkflow:properties></bpmn:extensionElements>
    <bpmn:userTask id="t1" name="Fill in">
      <bpmn:extensionElements><spiffworkflow:properties>
        <spiffworkflow:property name="formId" value="f" />
        <spiffworkflow:property name="nameZh" value="  填写  " />
        <spiffworkflow:property name="nameEn" value="" />
      </spiffworkflow:properties></bpmn:extensionElements>
    </bpmn:userTask>
    <bpmn:userTask id="t2" name="Check" />
    <bpmn:endEvent id="end" />
  </bpmn:process>
</bpmn:definitions>"""


def test_labels_from_xml_reads_properties_pools_and_names():
    labels = labels_from_xml(POOL_XML)
    # the process' own property wins over its pool's; the pool fills in what the process lacks
    assert labels["p"] == {"": "流程", "zh": "流程自己的名称", "en": "Pool name"}
    assert labels["t1"] == {"": "Fill in", "zh": "填写"}  # trimmed; an empty property is no label
    assert labels["t2"] == {"": "Check"}
    assert "end" not in labels  # neither a name nor a label


def test_pick_order():
    assert pick({"": "Fill in", "zh": "填写"}, "zh", "表单标题") == "填写"
    assert pick({"": "Check"}, "zh", "表单标题") == "表单标题"
    assert pick({"": "Check"}, "zh") == "Check"
    assert pick({"": "Check"}, "en", "表单标题") == "Check"  # English: the BPMN name, never a form title
    assert pick(None, "zh", "表单标题") == "表单标题"
    assert pick(None, "en", "Form title") is None


def test_library_labels_in_both_languages_and_refreshed_on_deploy(library):  # noqa: F811

    rt, db, form_hash = library
    labels = Labels()
    with db.tx() as s:
        index = labels.index(s)
        assert labels.index(s) is index  # nothing deployed since: the same index
        assert index.process("entity_inspection", "zh") == "单户市场主体抽查检查"
        assert index.process("entity_inspection", "en") == "Inspection of one drawn entity"
        assert index.element("entity_inspection", "inspect", "zh") == "现场检查（合并检查单）"
        assert index.element("entity_inspection", "inspect", "en") == "Inspection (merged checklist)"
        # a task of the rectification call activity runs in an entity_inspection instance
        assert index.element("entity_inspection", "serve_order", "zh") == "送达责令整改通知书"
        # an element id used by several processes is found only under its own process
        assert index.element("nowhere", "start", "zh") is None
        assert index.element("unknown", "nothing", "zh", "表单标题") == "表单标题"

    text = (PROCESSES / INSPECTION).read_text(encoding="utf-8").replace(
        'value="现场检查（合并检查单）"', 'value="现场检查"')
    with db.tx() as s:
        modeling.deploy_file(rt, s, INSPECTION, text, "designer", form_hash)
    with db.tx() as s:
        assert labels.index(s).element("entity_inspection", "inspect", "zh") == "现场检查"


def test_localized_xml_renames_elements_that_have_a_label():
    zh = labels_from_xml(localized_xml(POOL_XML, "zh"))
    assert zh["t1"][""] == "填写" and zh["t2"][""] == "Check" and zh["p"][""] == "流程自己的名称"
    assert zh["pool"][""] == "泳池名"
    assert labels_from_xml(localized_xml(POOL_XML, "en"))["pool"][""] == "Pool name"
    assert localized_xml(POOL_XML, "fr") is POOL_XML  # no such language: the XML as it is


def test_every_named_element_of_the_library_has_a_chinese_name():
    """The library speaks Chinese to its users: every named task, event, gateway, call activity and sequence
    flow of the four processes has a nameZh (the audit timeline and diagram show them)."""
    missing = []
    for path in sorted(PROCESSES.glob("*.bpmn")):
        labels = labels_from_xml(path.read_bytes())
        for el in etree.parse(str(path)).getroot().iter():
            if not isinstance(el.tag, str):
                continue
            kind = etree.QName(el).localname
            if (kind.endswith(("Task", "Event", "Gateway"))
                    or kind in ("callActivity", "subProcess", "process", "sequenceFlow")) \
                    and el.get("name") and "zh" not in labels.get(el.get("id"), {}):
                missing.append(f"{path.name}: {kind} {el.get('id')}")
    assert not missing, missing
