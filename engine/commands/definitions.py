"""Process-definition commands: validate a BPMN/DMN file against the deployed library, deploy one file (the
modelers) or a set of files (``regflow deploy``), for designers (:func:`engine.policy.check_design`); see
:mod:`engine.commands`. The checks are the engine's own deploy validation (:mod:`engine.runtime.modeling`,
:mod:`engine.runtime.deploy`); content identical to the deployed version keeps its version."""
from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from engine import policy
from engine.errors import InvalidInput
from engine.policy import Actor
from engine.runtime import deploy as deployment
from engine.runtime import modeling
from engine.runtime.deploy import Deployed, FormHasher
from engine.runtime.runtime import Runtime


def _file(file_name: Any, xml: Any) -> tuple[str, str]:
    if not isinstance(xml, str):
        raise InvalidInput.fmt("The request carries no BPMN or DMN text (the xml field).", details={"field": "xml"})
    return (file_name.strip() if isinstance(file_name, str) else ""), xml


def validate(rt: Runtime, session: Session, actor: Actor, file_name: Any, xml: Any,
             form_hash: FormHasher | None = None) -> list[dict]:
    """The engine's deploy checks on ``xml`` as ``file_name`` within the deployed library: the issues
    ``{file, line, element_id, field, message}``, empty when the file would deploy. Nothing is written."""
    policy.check_design(actor)
    file_name, xml = _file(file_name, xml)
    return modeling.validate_file(rt, session, file_name, xml, form_hash)


def deploy_file(rt: Runtime, session: Session, actor: Actor, file_name: Any, xml: Any,
                form_hash: FormHasher | None = None) -> list[Deployed]:
    """Deploy the library with ``file_name`` replaced by ``xml`` (:class:`~engine.errors.DefinitionError` with
    the issues, nothing written, when it does not pass the checks)."""
    policy.check_design(actor)
    file_name, xml = _file(file_name, xml)
    return modeling.deploy_file(rt, session, file_name, xml, actor.username, form_hash)


def deploy(rt: Runtime, session: Session, actor: Actor, files: dict[str, str],
           form_hash: FormHasher | None = None) -> list[Deployed]:
    """Deploy ``files`` (``{file name: text}``, as :func:`engine.runtime.deploy.read_paths` reads them): all or
    nothing."""
    policy.check_design(actor)
    return deployment.deploy(rt, session, files, actor.username, form_hash=form_hash)
