"""The web workbench (Flask). Not built yet: see issue 5; the engine and CLI work without it."""
