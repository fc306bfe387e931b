"""The ``spiffworkflow:properties`` of a process element, read from its BPMN XML.

A process (or the pool that refers to it) carries properties that regflow reads but SpiffWorkflow does not,
e.g. ``startableBy`` (which groups may start it, see ``engine.policy``). Parsed once per XML text."""
from __future__ import annotations

import hashlib
import threading

from lxml import etree

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
SPIFF_NS = "http://spiffworkflow.org/bpmn/schema/1.0/core"
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)
_cache: dict[tuple[str, str], dict[str, str]] = {}
_lock = threading.Lock()


def _properties_of(el) -> dict[str, str]:
    out: dict[str, str] = {}
    ext = el.find(f"{{{BPMN_NS}}}extensionElements")
    if ext is not None:
        for prop in ext.iterfind(f"{{{SPIFF_NS}}}properties/{{{SPIFF_NS}}}property"):
            if prop.get("name"):
                out[prop.get("name")] = (prop.get("value") or "").strip()
    return out


def process_properties(bpmn_xml: str, process_id: str) -> dict[str, str]:
    """``{name: value}`` of the process ``process_id`` (its pool's properties, overridden by its own)."""
    key = (hashlib.sha256(bpmn_xml.encode()).hexdigest(), process_id)
    found = _cache.get(key)
    if found is not None:
        return found
    root = etree.fromstring(bpmn_xml.encode(), _PARSER)
    props: dict[str, str] = {}
    for pool in root.iter(f"{{{BPMN_NS}}}participant"):
        if pool.get("processRef") == process_id:
            props.update(_properties_of(pool))
    for proc in root.iter(f"{{{BPMN_NS}}}process"):
        if proc.get("id") == process_id:
            props.update(_properties_of(proc))
    with _lock:
        if len(_cache) > 256:
            _cache.clear()
        _cache[key] = props
    return props
