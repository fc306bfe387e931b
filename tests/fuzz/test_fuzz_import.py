"""The registries' CSV import (``regflow import KIND FILE``: :mod:`engine.supervision.importer`) with random files
of every kind — reordered or missing columns, cells replaced by hostile text, huge numbers, quotes and line
breaks, short rows, raw text spliced in: the file is imported or refused as a whole with
:class:`~engine.supervision.importer_rows.ImportRejected` listing each problem's row and column — never another
exception."""
from __future__ import annotations

import io
from datetime import date, datetime, timezone

from hypothesis import given, note
from hypothesis import strategies as st

from engine.supervision import importer as im
from tests.fuzz.strategies import CSV_KINDS, csv_files, fuzz_settings

NOW = datetime(2026, 3, 5, 2, 0, tzinfo=timezone.utc)
EXAMPLES_PER_KIND = 120
IMPORTERS = {
    "departments": im.import_departments, "skills": im.import_skills, "entities": im.import_entities,
    "leaves": im.import_leaves,
    "inspectors": lambda s, src: im.import_inspectors(s, src, today=date(2026, 3, 5), now=NOW),
    "conflicts": lambda s, src: im.import_conflicts(s, src, now=NOW),
    "items": lambda s, src: im.import_items(s, src, now=NOW),
}


def run_import(session, kind: str, text: str) -> list:
    """Import ``text`` as ``kind`` in ``session`` (rolled back); the problems found (empty: imported)."""
    try:
        report = IMPORTERS[kind](session, io.StringIO(text))
    except im.ImportRejected as exc:
        rows = text.count("\n") + text.count("\r") + 2
        columns = set(CSV_KINDS[kind][0]) | {h.strip().lstrip("\ufeff") for h in text.split("\n", 1)[0].split(",")}
        assert exc.errors, str(exc)
        for e in exc.errors:
            assert 1 <= e.row <= rows and e.reason, e
            assert e.column is None or e.column in columns, (e, columns)
        assert exc.exit_code == 2 and exc.http_status == 400
        return exc.errors
    finally:
        session.rollback()
    assert report.rows >= 0
    return []


def test_random_csv_files_are_imported_or_refused_by_row_and_column(web_env, tally):
    session = web_env.factory()
    try:
        @fuzz_settings(EXAMPLES_PER_KIND)
        @given(data=st.data())
        def run(kind, data):
            text = data.draw(csv_files(kind))
            note(f"regflow import {kind}: {text!r:.3000}")
            tally.answer("refused" if run_import(session, kind, text) else "imported")
            tally.case()

        for kind in CSV_KINDS:
            run(kind)
    finally:
        session.close()
    assert set(tally.answers) == {"imported", "refused"}, tally.answers
