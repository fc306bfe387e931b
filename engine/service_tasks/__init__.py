"""Built-in service operators, one module per group. Importing this package registers them."""
from . import documents, draw, enforcement, hazards, inspection, lists, publication, risk, teams, transfers, util  # noqa: F401
