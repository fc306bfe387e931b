"""The commands every edge calls: the web pages, ``/api/v1`` and the ``regflow`` CLI are thin adapters over
these functions (parse, call, render). A command takes the session, the :class:`engine.policy.Actor` and plain
inputs (JSON-like values), applies the authorization policy, loads what it needs once, validates and coerces
once, and raises the typed errors of :mod:`engine.errors` (each carries its HTTP status and CLI exit code).
Commands never commit: the edge owns the transaction.

- :mod:`engine.commands.tasks` — read, claim, unclaim, delegate, complete a human task;
- :mod:`engine.commands.instances` — start an instance, read it and its history;
- :mod:`engine.commands.evidence` — attach evidence to a task, open a stored file;
- :mod:`engine.commands.users` — administer users: add, roles and groups, jurisdiction, activation, API tokens;
- :mod:`engine.commands.definitions` — validate and deploy process definitions;
- :mod:`engine.commands.hazards` — settle a stranded rectification order or enforcement case.
"""
