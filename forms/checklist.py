"""One merged checklist (一表通查) from several departments' check items.

Two clauses are the same check when they share a clause code, or when their texts are equal after
normalisation (NFKC, so full-width and half-width forms agree; case-folded; whitespace, punctuation and
control characters removed). Sameness is transitive (union-find). Items are taken in (code, department)
order and clauses in their listed order, so the result does not depend on the order of the input; each
merged clause keeps the code and text of its first occurrence and lists every item/department it
covers and every legal basis, de-duplicated in order of appearance.
"""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Any

from .model import Text
from .schema import CODE_RE


@dataclass(frozen=True)
class MergedChecklist:
    #: A checklist field definition (JSON-compatible dict, as in a form YAML): ``{name, type: checklist,
    #: label, required, clauses: [{code, text, basis, covers}]}``. Bind it with ``forms.schema.bind_clauses``.
    field: dict
    clauses_before: int
    clauses_after: int

    @property
    def saved(self) -> int:
        return self.clauses_before - self.clauses_after


def normalise(text: str) -> str:
    """The comparison key of a clause text."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return "".join(ch for ch in text if unicodedata.category(ch)[0] not in "PZC")


class _UnionFind:
    def __init__(self, n: int):
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:  # the earlier occurrence stays the representative
            self.parent[max(ra, rb)] = min(ra, rb)


def _check_items(items: Any) -> list[dict]:
    if not isinstance(items, list):
        raise ValueError("check items must be a list")
    for i, it in enumerate(items):
        if not isinstance(it, dict) or not all(isinstance(it.get(k), str) and it[k].strip()
                                                for k in ("code", "name", "department")):
            raise ValueError(f"check item {i}: needs non-empty string code, name and department")
        if not isinstance(it.get("clauses"), list):
            raise ValueError(f"check item {it['code']}: clauses must be a list")
        for j, c in enumerate(it["clauses"]):
            if not isinstance(c, dict) or not isinstance(c.get("code"), str) or not CODE_RE.match(c["code"]) \
                    or not isinstance(c.get("text"), str) or not normalise(c["text"]):
                raise ValueError(f"check item {it['code']} clause {j}: needs a code (no spaces or brackets) "
                                 "and a non-empty text")
            basis = c.get("basis", [])
            if not isinstance(basis, (str, list)):
                raise ValueError(f"check item {it['code']} clause {c['code']}: basis must be a string or a list")
    return items


def merge_checklist(items: list[dict], *, name: str = "checklist", label: dict | None = None) -> MergedChecklist:
    """Merge ``[{code, name, department, clauses: [{code, text, basis}]}]`` into one checklist field."""
    items = sorted(_check_items(items), key=lambda it: (it["code"], it["department"]))
    occ: list[tuple[dict, dict]] = [(it, c) for it in items for c in it["clauses"]]
    uf = _UnionFind(len(occ))
    first_by_key: dict[tuple[str, str], int] = {}
    for i, (_, c) in enumerate(occ):
        for key in (("code", c["code"]), ("text", normalise(c["text"]))):
            if key in first_by_key:
                uf.union(first_by_key[key], i)
            else:
                first_by_key[key] = i
    groups: dict[int, list[int]] = {}
    for i in range(len(occ)):
        groups.setdefault(uf.find(i), []).append(i)
    clauses = []
    for root in sorted(groups):
        members = groups[root]
        _, head = occ[members[0]]
        basis: list[str] = []
        covers: list[dict] = []
        for i in members:
            it, c = occ[i]
            for b in [c["basis"]] if isinstance(c.get("basis"), str) else c.get("basis", []):
                if b.strip() and b.strip() not in basis:
                    basis.append(b.strip())
            cover = {"item": it["code"], "item_name": it["name"], "department": it["department"],
                     "clause": c["code"]}
            if cover not in covers:
                covers.append(cover)
        clauses.append({"code": head["code"], "text": head["text"].strip(), "basis": basis, "covers": covers})
    label = label or Text("一表通查检查表", "Merged checklist").to_json()
    field = {"name": name, "type": "checklist", "label": label, "required": True, "clauses": clauses}
    return MergedChecklist(field=field, clauses_before=len(occ), clauses_after=len(clauses))
