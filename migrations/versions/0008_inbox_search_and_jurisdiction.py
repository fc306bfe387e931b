"""Inbox at scale: entity-name bigram index, and the entity's district on the candidate queue rows

Revision ID: 0008_inbox
Revises: 0007_web
Create Date: 2026-11-26 23:40:00

Two structures behind engine.supervision.inbox, both kept current by the database itself (triggers), so that
no writer — the runtime, the registry import, an operator's SQL — has to know about them:

* ``human_task_candidate.district``: the district of the task's entity (``entity.uscc =
  human_task.business_key``), NULL when the task has no entity in the registry. With the index
  (group, claimed, district, due, task) "unclaimed tasks of my group in my districts, soonest due first"
  is a few ordered index ranges instead of a district check per queued task. Written when a candidate
  row is inserted, and again when an entity is added, deleted or changes its USCC or district, or a task
  its business key.
* an index of the two-character substrings (bigrams) of entity names, for the inbox's substring search
  (``name LIKE '%text%'`` without a scan of the entity table): every name containing a text of two or
  more characters contains each of the text's bigrams, so the entities holding all of them are a
  superset that the LIKE then checks. Bigrams, not trigrams: two-character searches are the usual
  Chinese case and trigram indexes (``pg_trgm``, FTS5 ``trigram``) cannot serve them.

  PostgreSQL: a GIN index on ``entity_name_bigrams(name)`` (an immutable SQL function giving the
  distinct bigrams as ``text[]``), queried with ``@>``. SQLite: a contentless FTS5 table
  ``entity_name_bigram`` (rowid = entity id) whose document is the hex of each ASCII-lower-cased bigram
  — one plain token per bigram whatever the characters, lower-cased as SQLite's LIKE folds case —,
  written by triggers on entity.

SQLite: a later migration that recreates ``entity``, ``human_task`` or ``human_task_candidate`` through
``batch_alter_table`` (move and copy) drops these triggers with the old table and must create them again.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_inbox"
down_revision = "0007_web"
branch_labels = None
depends_on = None

# ------------------------------------------------------------------------------------------- SQLite
# The bigram document of a name X: hex(lower(substr(X, i, 2))) for i = 1 … length(X) - 1, space-separated.
# Triggers cannot use WITH (no recursive CTE), so the positions come from json_each over a JSON array of
# length(X) - 1 zeros, built as hex(zeroblob(n)) = '00' * n → '0,' * n.
_SQLITE_GRAMS = ("(SELECT group_concat(hex(lower(substr({x}, key + 1, 2))), ' ') FROM json_each("
                 "'[' || rtrim(replace(hex(zeroblob(length({x}) - 1)), '00', '0,'), ',') || ']'))")
_SQLITE_TASKS_OF = "task_id IN (SELECT id FROM human_task WHERE business_key = {uscc})"

SQLITE_UP = [
    "CREATE VIRTUAL TABLE entity_name_bigram USING fts5(grams, content='', detail='none', columnsize=0, "
    "tokenize='unicode61')",
    f"INSERT INTO entity_name_bigram (rowid, grams) SELECT id, {_SQLITE_GRAMS.format(x='name')} FROM entity",
    f"""CREATE TRIGGER trg_entity_name_bigram_insert AFTER INSERT ON entity BEGIN
        INSERT INTO entity_name_bigram (rowid, grams) VALUES (NEW.id, {_SQLITE_GRAMS.format(x='NEW.name')});
    END""",
    f"""CREATE TRIGGER trg_entity_name_bigram_delete AFTER DELETE ON entity BEGIN
        INSERT INTO entity_name_bigram (entity_name_bigram, rowid, grams)
            VALUES ('delete', OLD.id, {_SQLITE_GRAMS.format(x='OLD.name')});
    END""",
    f"""CREATE TRIGGER trg_entity_name_bigram_update AFTER UPDATE OF id, name ON entity BEGIN
        INSERT INTO entity_name_bigram (entity_name_bigram, rowid, grams)
            VALUES ('delete', OLD.id, {_SQLITE_GRAMS.format(x='OLD.name')});
        INSERT INTO entity_name_bigram (rowid, grams) VALUES (NEW.id, {_SQLITE_GRAMS.format(x='NEW.name')});
    END""",
    """CREATE TRIGGER trg_human_task_candidate_district AFTER INSERT ON human_task_candidate BEGIN
        UPDATE human_task_candidate SET district = (
            SELECT e.district FROM human_task t JOIN entity e ON e.uscc = t.business_key WHERE t.id = NEW.task_id)
        WHERE task_id = NEW.task_id AND group_name = NEW.group_name;
    END""",
    """CREATE TRIGGER trg_human_task_key_district AFTER UPDATE OF business_key ON human_task BEGIN
        UPDATE human_task_candidate SET district = (SELECT district FROM entity WHERE uscc = NEW.business_key)
        WHERE task_id = NEW.id;
    END""",
    f"""CREATE TRIGGER trg_entity_task_district_insert AFTER INSERT ON entity BEGIN
        UPDATE human_task_candidate SET district = NEW.district WHERE {_SQLITE_TASKS_OF.format(uscc='NEW.uscc')};
    END""",
    f"""CREATE TRIGGER trg_entity_task_district_update AFTER UPDATE OF uscc, district ON entity BEGIN
        UPDATE human_task_candidate SET district = NULL
        WHERE NEW.uscc IS NOT OLD.uscc AND {_SQLITE_TASKS_OF.format(uscc='OLD.uscc')};
        UPDATE human_task_candidate SET district = NEW.district WHERE {_SQLITE_TASKS_OF.format(uscc='NEW.uscc')};
    END""",
    f"""CREATE TRIGGER trg_entity_task_district_delete AFTER DELETE ON entity BEGIN
        UPDATE human_task_candidate SET district = NULL WHERE {_SQLITE_TASKS_OF.format(uscc='OLD.uscc')};
    END""",
    "UPDATE human_task_candidate SET district = (SELECT e.district FROM human_task t JOIN entity e "
    "ON e.uscc = t.business_key WHERE t.id = human_task_candidate.task_id)",
]
SQLITE_TRIGGERS = ["trg_entity_name_bigram_insert", "trg_entity_name_bigram_delete", "trg_entity_name_bigram_update",
                   "trg_human_task_candidate_district", "trg_human_task_key_district",
                   "trg_entity_task_district_insert", "trg_entity_task_district_update",
                   "trg_entity_task_district_delete"]

# --------------------------------------------------------------------------------------- PostgreSQL
PG_UP = [
    """CREATE FUNCTION entity_name_bigrams(name text) RETURNS text[]
        LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
        SELECT coalesce(array_agg(DISTINCT substr($1, i, 2)), '{}')
        FROM generate_series(1, char_length($1) - 1) AS i
    $$""",
    "CREATE INDEX ix_entity_name_bigrams ON entity USING gin (entity_name_bigrams(name))",
    """CREATE FUNCTION human_task_candidate_district() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        NEW.district := (SELECT e.district FROM human_task t JOIN entity e ON e.uscc = t.business_key
                         WHERE t.id = NEW.task_id);
        RETURN NEW;
    END $$""",
    """CREATE TRIGGER trg_human_task_candidate_district BEFORE INSERT ON human_task_candidate
        FOR EACH ROW EXECUTE FUNCTION human_task_candidate_district()""",
    """CREATE FUNCTION human_task_key_district() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE human_task_candidate SET district = (SELECT district FROM entity WHERE uscc = NEW.business_key)
        WHERE task_id = NEW.id;
        RETURN NULL;
    END $$""",
    """CREATE TRIGGER trg_human_task_key_district AFTER UPDATE OF business_key ON human_task
        FOR EACH ROW EXECUTE FUNCTION human_task_key_district()""",
    """CREATE FUNCTION entity_task_district() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'DELETE' OR (TG_OP = 'UPDATE' AND NEW.uscc IS DISTINCT FROM OLD.uscc) THEN
            UPDATE human_task_candidate c SET district = NULL FROM human_task t
            WHERE t.business_key = OLD.uscc AND c.task_id = t.id AND c.district IS NOT NULL;
        END IF;
        IF TG_OP <> 'DELETE' THEN
            UPDATE human_task_candidate c SET district = NEW.district FROM human_task t
            WHERE t.business_key = NEW.uscc AND c.task_id = t.id AND c.district IS DISTINCT FROM NEW.district;
        END IF;
        RETURN NULL;
    END $$""",
    """CREATE TRIGGER trg_entity_task_district AFTER INSERT OR DELETE OR UPDATE OF uscc, district ON entity
        FOR EACH ROW EXECUTE FUNCTION entity_task_district()""",
    "UPDATE human_task_candidate c SET district = e.district FROM human_task t JOIN entity e "
    "ON e.uscc = t.business_key WHERE t.id = c.task_id",
    # statistics of the new index expression (autovacuum analyzes entity only after enough of it changes)
    "ANALYZE entity",
]
PG_DOWN = [
    "DROP TRIGGER trg_entity_task_district ON entity",
    "DROP FUNCTION entity_task_district()",
    "DROP TRIGGER trg_human_task_key_district ON human_task",
    "DROP FUNCTION human_task_key_district()",
    "DROP TRIGGER trg_human_task_candidate_district ON human_task_candidate",
    "DROP FUNCTION human_task_candidate_district()",
    "DROP INDEX ix_entity_name_bigrams",
    "DROP FUNCTION entity_name_bigrams(text)",
]


def upgrade() -> None:
    op.add_column("human_task_candidate", sa.Column("district", sa.String(length=6), nullable=True))
    for statement in (SQLITE_UP if op.get_context().dialect.name == "sqlite" else PG_UP):
        op.execute(statement)
    # after the copy: one sorted build instead of a million index updates
    op.create_index("ix_human_task_candidate_district", "human_task_candidate",
                    ["group_name", "claimed", "district", "due_key", "task_id"])
    if op.get_context().dialect.name == "postgresql":
        # the copy left a dead version of every queue row, whose entries (district NULL) the new index holds
        # until a vacuum: a jurisdiction's "no entity" range would visit them all (60 ms per group with 1M tasks)
        with op.get_context().autocommit_block():
            op.execute("VACUUM ANALYZE human_task_candidate")


def downgrade() -> None:
    if op.get_context().dialect.name == "sqlite":
        for name in SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER {name}")
        op.execute("DROP TABLE entity_name_bigram")
    else:
        for statement in PG_DOWN:
            op.execute(statement)
    op.drop_index("ix_human_task_candidate_district", table_name="human_task_candidate")
    with op.batch_alter_table("human_task_candidate") as batch:
        batch.drop_column("district")
