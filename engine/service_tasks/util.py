"""Generic operators useful in any process."""
from __future__ import annotations

from engine.runtime.services import Param, ServiceContext, registry


@registry.register("util.echo", params=[Param("value", "any")], description="Return the value unchanged.",
                   writes=False)
def echo(ctx: ServiceContext, value):
    return value


@registry.register("util.now", description="The engine clock's current time (ISO 8601, UTC).", writes=False)
def now(ctx: ServiceContext):
    return ctx.now.isoformat()
