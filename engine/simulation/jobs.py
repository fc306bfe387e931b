"""The child process of a simulation job (``engine.commands.simulations`` starts it for the worker):
``python -m engine.simulation.jobs PARAMS.json PROGRESS.json``.

``PARAMS.json`` holds ``entities``, ``seed``, ``training_entities`` and ``decision_files`` (paths of what-if DMN
files). The run's progress is written to ``PROGRESS.json`` (replaced atomically at each phase and simulated
day) and its summary printed as JSON on standard output; refused input (a what-if file) exits with 2 after an
``error: …`` line on standard error. The run uses its own temporary SQLite database, never the live one.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from engine.config import PROJECT_ROOT
from engine.errors import InvalidInput
from engine.runtime.deploy import read_paths

from .options import Options, library_with
from .run import simulate


def progress_writer(path: Path):
    """``progress(doc)`` that replaces ``path`` with ``doc`` as JSON (a reader never sees half a file)."""
    tmp = path.with_name(path.name + ".tmp")

    def write(doc: dict) -> None:
        tmp.write_text(json.dumps(doc), encoding="utf-8")
        os.replace(tmp, path)

    return write


def main(argv: list[str]) -> int:
    params_path, progress_path = (Path(a) for a in argv)
    params = json.loads(params_path.read_text(encoding="utf-8"))
    decision_files = tuple(params.get("decision_files", ()))
    try:
        library_with(read_paths([PROJECT_ROOT / "processes"]), decision_files)  # bad files fail first
    except InvalidInput as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    summary = simulate(Options(entities=int(params["entities"]), seed=int(params["seed"]),
                               training_entities=int(params.get("training_entities", 2000)),
                               decision_files=decision_files),
                       progress=progress_writer(progress_path))
    print(json.dumps(summary, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
