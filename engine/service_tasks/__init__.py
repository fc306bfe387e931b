"""Built-in service operators, one module per group. Importing this package registers them."""
from . import draw, enforcement, hazards, inspection, publication, risk, teams, util  # noqa: F401
