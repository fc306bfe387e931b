"""Built-in service operators, one module per group. Importing this package registers them."""
from . import risk, util  # noqa: F401
