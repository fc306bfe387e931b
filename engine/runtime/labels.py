"""Display names of processes and their elements in the UI's languages.

A BPMN ``name`` is written in English, like the code (``processes/`` does so); a designer adds the name
in another language as a ``spiffworkflow:property`` on the element — ``nameZh`` (Simplified Chinese) or
``nameEn`` (English, when the ``name`` is written in another language). On a process the property sits
in the process' ``extensionElements``, or in its pool's (the ``bpmn:participant`` that refers to it).

:func:`pick` gives an element's name for a language: its ``name<Lang>`` property, else (for Chinese) a
fallback the caller passes — the web passes the task form's Chinese title — else its ``name``. Labels
come from the latest deployed version of each process and are read from the stored BPMN XML once per
set of deployed definitions (:class:`Labels`); a task of a call activity is found under the process that
defines it.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field

from lxml import etree
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.runtime.models import ProcessDefinition as PD

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
SPIFF_NS = "http://spiffworkflow.org/bpmn/schema/1.0/core"
#: the property that carries an element's name in each UI language
LABEL_PROPERTIES = {"zh": "nameZh", "en": "nameEn"}
_PROPERTY_LANG = {v: k for k, v in LABEL_PROPERTIES.items()}
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)


def labels_from_xml(xml: str | bytes) -> dict[str, dict[str, str]]:
    """``{element id: {"": name, "zh": …, "en": …}}`` for every element of the file with a name or a
    label property; a pool's labels also go to the process it refers to (the process' own win)."""
    root = etree.fromstring(xml.encode() if isinstance(xml, str) else xml, _PARSER)
    out: dict[str, dict[str, str]] = {}
    pools: dict[str, dict[str, str]] = {}
    for el in root.iter(f"{{{BPMN_NS}}}*"):
        element_id = el.get("id")
        if not element_id:
            continue
        names: dict[str, str] = {}
        if el.get("name"):
            names[""] = el.get("name")
        ext = el.find(f"{{{BPMN_NS}}}extensionElements")
        if ext is not None:
            for prop in ext.iterfind(f"{{{SPIFF_NS}}}properties/{{{SPIFF_NS}}}property"):
                lang = _PROPERTY_LANG.get(prop.get("name") or "")
                if lang and (prop.get("value") or "").strip():
                    names[lang] = prop.get("value").strip()
        if names:
            out[element_id] = names
        if el.tag == f"{{{BPMN_NS}}}participant" and el.get("processRef") and names:
            pools[el.get("processRef")] = names
    for process_id, names in pools.items():
        out[process_id] = {**names, **out.get(process_id, {})}
    return out


def localized_xml(xml: str, lang: str) -> str:
    """The BPMN XML with each element's ``name`` replaced by its ``name<Lang>`` property where it has one
    (the auditor's diagram in the page's language); the XML unchanged when no element has one."""
    prop = LABEL_PROPERTIES.get(lang)
    if prop is None or prop not in xml:
        return xml
    root = etree.fromstring(xml.encode(), _PARSER)
    for ext in root.iter(f"{{{BPMN_NS}}}extensionElements"):
        for p in ext.iterfind(f"{{{SPIFF_NS}}}properties/{{{SPIFF_NS}}}property"):
            if p.get("name") == prop and (p.get("value") or "").strip():
                ext.getparent().set("name", p.get("value").strip())
    return etree.tostring(root, encoding="unicode")


def pick(names: dict[str, str] | None, lang: str, fallback: str | None = None) -> str | None:
    """The name for ``lang`` from ``labels_from_xml``'s entry: the language's property, else ``fallback``
    (for a language other than English), else the plain name."""
    if not names:
        return fallback if lang != "en" else None
    return names.get(lang) or (fallback if lang != "en" and fallback else None) or names.get("")


@dataclass
class LabelIndex:
    """The names of one set of deployed definitions."""
    key: tuple
    #: process id -> element id -> names (the latest version of each process)
    by_process: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)
    #: element id -> names, for elements whose id is unique across the library (a call activity's tasks)
    by_element: dict[str, dict[str, str]] = field(default_factory=dict)

    def process(self, process_id: str, lang: str) -> str | None:
        return pick(self.by_process.get(process_id, {}).get(process_id), lang)

    def element(self, process_id: str, element_id: str, lang: str, fallback: str | None = None) -> str | None:
        names = self.by_process.get(process_id, {}).get(element_id) or self.by_element.get(element_id)
        return pick(names, lang, fallback)


class Labels:
    """The labels of the deployed library, rebuilt when a definition is deployed: :meth:`index` costs one
    ``count``/``max(id)`` query, so a caller takes it once per page or command and looks names up in it."""

    def __init__(self):
        self._index = LabelIndex(key=())
        self._lock = threading.Lock()

    def index(self, session: Session) -> LabelIndex:
        key = tuple(session.execute(select(func.count(PD.id), func.max(PD.id))).one())
        if key == self._index.key:
            return self._index
        latest = (select(PD.process_id, func.max(PD.version).label("version"))
                  .group_by(PD.process_id).subquery())
        rows = session.execute(select(PD.process_id, PD.bpmn_xml).join(
            latest, (latest.c.process_id == PD.process_id) & (latest.c.version == PD.version))).all()
        by_process: dict[str, dict[str, dict[str, str]]] = {}
        files: dict[str, dict[str, dict[str, str]]] = {}  # a file that holds two processes is read once
        for process_id, xml in rows:
            if xml not in files:
                try:
                    files[xml] = labels_from_xml(xml)
                except etree.XMLSyntaxError:
                    files[xml] = {}
            by_process[process_id] = files[xml]
        seen: dict[str, int] = {}
        by_element: dict[str, dict[str, str]] = {}
        for labels in files.values():
            for element_id, names in labels.items():
                seen[element_id] = seen.get(element_id, 0) + 1
                by_element[element_id] = names
        by_element = {k: v for k, v in by_element.items() if seen[k] == 1}
        index = LabelIndex(key=key, by_process=by_process, by_element=by_element)
        with self._lock:
            self._index = index
        return index
