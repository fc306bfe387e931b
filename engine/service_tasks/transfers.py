"""``transfer.*``: the transfer (移送) process's steps over :mod:`engine.supervision.transfers`."""
from __future__ import annotations

from engine.errors import Conflict, InvalidInput, NotFound
from engine.runtime.services import Param, ServiceContext, registry
from engine.supervision import transfers

ERRORS = {InvalidInput: "invalid_transfer", NotFound: "transfer_not_found", Conflict: "transfer_conflict"}


@registry.register(
    "transfer.open",
    params=[Param("kind", "str", description="other_department | police | judiciary | new_jurisdiction"),
            Param("uscc", "str"), Param("receiving", "str", description="the receiving authority"),
            Param("reason", "str"), Param("entity_id", "int", required=False),
            Param("source_instance_id", "int", required=False,
                  description="the inspection or case whose finding or decision leads to the transfer")],
    description="Open the transfer of this instance (the same one when the step runs again).", errors=ERRORS)
def transfer_open(ctx: ServiceContext, kind: str, uscc: str, receiving: str, reason: str,
                  entity_id: int | None = None, source_instance_id: int | None = None) -> dict:
    return transfers.transfer_doc(transfers.open_transfer(
        ctx.session, kind=kind, uscc=uscc, receiving=receiving, reason=reason, entity_id=entity_id,
        source_instance_id=source_instance_id, instance_id=ctx.instance_id, actor=ctx.actor, now=ctx.now))


@registry.register(
    "transfer.send",
    params=[Param("transfer_id", "int"), Param("facts", "str"), Param("materials", "list"),
            Param("letter_number", "str", required=False, description="the 移送函's number, when one was issued"),
            Param("receiving", "str", required=False, description="the receiving authority as the letter names it")],
    description="Record what was sent (facts, materials, the letter's number).", errors=ERRORS)
def transfer_send(ctx: ServiceContext, transfer_id: int, facts: str, materials: list,
                  letter_number: str | None = None, receiving: str | None = None) -> dict:
    return transfers.transfer_doc(transfers.send(ctx.session, transfer_id, facts=facts, materials=materials,
                                                 letter_number=letter_number, receiving=receiving, actor=ctx.actor,
                                                 now=ctx.now))


@registry.register(
    "transfer.record_receipt",
    params=[Param("transfer_id", "int"), Param("receipt", "dict", description="received_on, received_by, "
                                                "reference, accepted, refusal_reason"),
            Param("via", "str", description="message | paper")],
    description="Record the receiving side's receipt: accepted, or refused with a reason.", errors=ERRORS)
def transfer_record_receipt(ctx: ServiceContext, transfer_id: int, receipt: dict, via: str) -> dict:
    return transfers.transfer_doc(transfers.record_receipt(
        ctx.session, transfer_id, received_on=receipt.get("received_on"), received_by=receipt.get("received_by"),
        reference=receipt.get("reference"), accepted=receipt.get("accepted"),
        refusal_reason=receipt.get("refusal_reason"), via=via, now=ctx.now))


@registry.register(
    "transfer.close",
    params=[Param("transfer_id", "int"),
            Param("outcome", "str", description="handled_ourselves | transferred_elsewhere | closed"),
            Param("note", "str", required=False)],
    description="Close a refused transfer with its outcome.", errors=ERRORS)
def transfer_close(ctx: ServiceContext, transfer_id: int, outcome: str, note: str | None = None) -> dict:
    return transfers.transfer_doc(transfers.close(ctx.session, transfer_id, outcome=outcome, note=note, now=ctx.now))
