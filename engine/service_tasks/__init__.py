"""Built-in service operators, one module per group. Importing this package registers them."""
from . import draw, enforcement, hazards, inspection, publication, risk, teams, transfers, util  # noqa: F401
