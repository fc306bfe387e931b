"""The official documents', the two lists' and the public draws' part of the authorization policy, re-exported by
:mod:`engine.policy` (call it as ``policy.check_*``): a seam of its own, as the records a bureau keeps beside its
cases, built on :mod:`engine.policy_base`.

- **Documents**: voided by supervisors and administrators; read (printed, downloaded) by whoever may read the
  instance that issued them; their service recorded by the officers who work the cases. A case file (案卷) is
  exported by whoever may read the case's instance.
- **The two lists**: read with internal fields by dossier readers; entries, removals and reviews by hand by
  supervisors in the entity's district (a reviewer is not the person who recorded the application); the lists'
  periodic jobs by hand only without a district restriction.
- **Publications**: a revocation of a published penalty (撤销, which starts the 3 working days to withdraw it)
  recorded by a supervisor of the entity's district; a record about no registered entity is city-wide.
- **Public draws**: a draw's population file (it carries each entity's credit class) for everyone where classes
  are public, otherwise for auditors.
"""
from __future__ import annotations

from sqlalchemy.orm import Session

from engine.errors import NotAllowed
from engine.policy_base import (
    DOSSIER_READERS,
    SUPERVISORS,
    TASK_WORKERS,
    Actor,
    check_read_instance,
    check_roles,
    district_of_uscc,
)
from engine.runtime.models import ProcessInstance

# ------------------------------------------------------------------------------------------ documents
#: who voids an issued official document (it keeps its number, marked void)
DOCUMENT_VOIDERS = ("supervisor", "admin")


def check_void_document(session: Session, actor: Actor, number: str, uscc: str | None) -> None:
    """Void an issued document: a supervisor or an administrator, its entity in their jurisdiction; one about no
    registered entity is city-wide, for those without a district restriction (as :func:`check_stranded`)."""
    check_roles(actor, DOCUMENT_VOIDERS)
    district = district_of_uscc(session, uscc)
    if district is None and actor.limited:
        raise NotAllowed(f"Document {number} concerns no registered entity (a city-wide matter); {actor.username} "
                         f"has a district jurisdiction.")
    if district is not None and not actor.sees_district(district):
        raise NotAllowed(f"Document {number} concerns an entity in district {district}, outside the jurisdiction "
                         f"of {actor.username}.")


#: who record that a document was served (送达回证): the officers who work the cases, and supervisors
DOCUMENT_SERVERS = TASK_WORKERS
#: who may ask for a document's PDF at all (the download page's roles); the instance decides the rest
DOCUMENT_READERS = DOSSIER_READERS


def check_read_document(session: Session, actor: Actor, number: str, instance_id: int | None,
                        uscc: str | None) -> None:
    """Read (print, download) an official document: whoever may read the instance that issued it
    (:func:`check_read_instance`); one issued outside a process, as its entity's dossier (:func:`check_entity`;
    about no registered entity: city-wide, for those without a district restriction)."""
    inst = session.get(ProcessInstance, instance_id) if instance_id is not None else None
    if inst is not None:
        check_read_instance(session, actor, inst)
        return
    check_roles(actor, DOSSIER_READERS)
    district = district_of_uscc(session, uscc)
    if district is None and actor.limited:
        raise NotAllowed.fmt("Document {number} concerns no registered entity (a city-wide matter); {user} has a "
                             "district jurisdiction.", number=number, user=actor.username)
    if district is not None and not actor.sees_district(district):
        raise NotAllowed.fmt("Document {number} concerns an entity in district {district}, outside the "
                             "jurisdiction of {user}.", number=number, district=district, user=actor.username)


#: who export a case's file (案卷: its documents, evidence and history in one signed bundle)
CASE_FILE_READERS = DOCUMENT_READERS


def check_export_case_file(session: Session, actor: Actor, inst: ProcessInstance) -> None:
    """Export a case file: a dossier reader who may read the case's instance (:func:`check_read_instance`), as its
    documents are read one by one; each instance the case started is included only if they may read it too."""
    check_roles(actor, CASE_FILE_READERS)
    check_read_instance(session, actor, inst)


def check_serve_document(session: Session, actor: Actor, number: str, instance_id: int | None,
                         uscc: str | None) -> None:
    """Record a document's service: an officer, team leader or supervisor who may read the document."""
    check_roles(actor, DOCUMENT_SERVERS)
    check_read_document(session, actor, number, instance_id, uscc)


# ------------------------------------------------------------------------------------------ the two lists
#: read the lists with internal fields; record a paper removal application; enter, remove, review by hand;
#: run the lists' periodic jobs by hand (city-wide work)
LIST_READERS, LIST_APPLICANT_CLERKS, LIST_KEEPERS, LIST_JOB_RUNNERS = (
    DOSSIER_READERS, TASK_WORKERS, SUPERVISORS, ("supervisor", "admin"))


def check_list_read(actor: Actor) -> None:
    check_roles(actor, LIST_READERS)


def check_list_entity(session: Session, actor: Actor, uscc: str | None, roles: tuple[str, ...] = LIST_KEEPERS,
                      applicant: str | None = None) -> None:
    """Change an entity's listing (``roles``: enter/remove/review by hand :data:`LIST_KEEPERS`, record an
    application :data:`LIST_APPLICANT_CLERKS`), the entity in the actor's district; a reviewer is not the
    ``applicant`` who recorded the application."""
    check_roles(actor, roles)
    district = district_of_uscc(session, uscc)
    if district is not None and not actor.sees_district(district):
        raise NotAllowed.fmt("Entity {uscc} is registered in district {district}, outside the jurisdiction of "
                             "{user}.", uscc=uscc, district=district, user=actor.username)
    if applicant is not None and actor.username == applicant:
        raise NotAllowed.fmt("{user} recorded this application and cannot review it.", user=actor.username)


def check_list_jobs(actor: Actor) -> None:
    """Run a list job by hand: a supervisor or administrator without a district restriction."""
    check_roles(actor, LIST_JOB_RUNNERS)
    if actor.limited:
        raise NotAllowed.fmt("This job covers every district; {user} has a district jurisdiction.",
                             user=actor.username)


# ------------------------------------------------------------------------------------------ publications
#: who record that a published penalty was revoked (on reconsideration, by a court or by the bureau itself)
REVOCATION_RECORDERS = SUPERVISORS


def check_record_revocation(session: Session, actor: Actor, publication_id: int, uscc: str | None) -> None:
    """Record a published penalty's revocation: a supervisor, the entity in their jurisdiction; a record about no
    registered entity is city-wide, for those without a district restriction (as :func:`check_void_document`)."""
    check_roles(actor, REVOCATION_RECORDERS)
    district = district_of_uscc(session, uscc)
    if district is None and actor.limited:
        raise NotAllowed.fmt("Publication {id} concerns no registered entity (a city-wide matter); {user} has a "
                             "district jurisdiction.", id=publication_id, user=actor.username)
    if district is not None and not actor.sees_district(district):
        raise NotAllowed.fmt("Publication {id} concerns an entity in district {district}, outside the jurisdiction "
                             "of {user}.", id=publication_id, district=district, user=actor.username)


# ------------------------------------------------------------------------------------------ public draws
#: who downloads a draw's population file when classes are not public: the auditors
POPULATION_READERS = ("auditor",)


def check_population_download(actor: Actor | None, *, classes_public: bool) -> None:
    """A draw's population file carries each entity's credit class: anyone may download it where classes are
    public (``REGFLOW_PUBLISH_RISK_CLASS=1``), otherwise only auditors (``actor`` None: an anonymous visitor)."""
    if classes_public or (actor is not None and actor.has(*POPULATION_READERS)):
        return
    raise NotAllowed.fmt("The population list carries each entity's credit class, which is not public here: only "
                         "auditors can download it.")
