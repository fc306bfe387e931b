"""Load form definitions from ``<root>/<form_id>.yaml``, strictly, with file/line/key in every error."""
from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, ScalarNode, SequenceNode

from .errors import FormDefinitionError, FormIssue, UnknownForm
from .model import FormDefinition
from .schema import ID_RE, Checker, parse_form

__all__ = ["FormRegistry", "FormDefinitionError", "UnknownForm", "load_form_file", "parse_form_text"]

_MERGE_TAG = "tag:yaml.org,2002:merge"


def _compose(text: str, file: str) -> tuple[Any, dict[tuple, int]]:
    """YAML text → plain data, plus the 1-based line of every key path. Duplicate keys are errors
    (PyYAML would silently keep the last one)."""
    loader = yaml.SafeLoader(text)
    try:
        try:
            root = loader.get_single_node()
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
            problem = getattr(exc, "problem", None) or str(exc)
            raise FormDefinitionError([FormIssue(file, mark.line + 1 if mark else None, "",
                                                 f"YAML syntax error: {problem}")]) from None
        ck = Checker(file)
        marks: dict[tuple, int] = {}

        def conv(node, path: tuple) -> Any:
            marks.setdefault(path, node.start_mark.line + 1)
            if isinstance(node, MappingNode):
                out: dict = {}
                for knode, vnode in node.value:
                    if knode.tag == _MERGE_TAG:
                        ck.marks[path] = knode.start_mark.line + 1
                        ck.err(path, "YAML merge keys (<<) are not supported")
                        continue
                    key = loader.construct_object(knode) if isinstance(knode, ScalarNode) else None
                    kpath = path + (key,)
                    if not isinstance(key, str):
                        ck.marks[path] = knode.start_mark.line + 1
                        ck.err(path, f"keys must be strings, not {key!r}")
                        continue
                    if key in out:
                        ck.marks[kpath] = knode.start_mark.line + 1
                        ck.err(kpath, f"duplicate key {key!r} (first on line {marks[kpath]})")
                        continue
                    marks[kpath] = knode.start_mark.line + 1
                    out[key] = conv(vnode, kpath)
                return out
            if isinstance(node, SequenceNode):
                return [conv(child, path + (i,)) for i, child in enumerate(node.value)]
            return loader.construct_object(node)

        data = conv(root, ()) if root is not None else None
        ck.raise_if_any()
        return data, marks
    finally:
        loader.dispose()


def parse_form_text(text: str, file: str = "<string>", *, expected_id: str | None = None) -> FormDefinition:
    data, marks = _compose(text, file)
    ck = Checker(file, marks)
    if data is None:
        ck.err((), "the file is empty")
        ck.raise_if_any()
    return parse_form(data, ck, expected_id=expected_id)


def load_form_file(path: Path) -> FormDefinition:
    """Parse one definition file; its ``id`` must equal the file name's stem."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FormDefinitionError([FormIssue(str(path), None, "", f"not UTF-8: {exc}")]) from None
    form = parse_form_text(text, str(path), expected_id=path.stem)
    return replace(form, source=str(path), sha256=hashlib.sha256(raw).hexdigest())


class FormRegistry:
    """The forms under one directory, parsed on first use and re-parsed when a file changes (mtime/size).

    ``form_hash`` is the SHA-256 of the file's bytes: the same digest the engine records on each user task.
    """

    def __init__(self, root: Path | str):
        self.root = Path(root)
        self._cache: dict[str, tuple[tuple[int, int], FormDefinition]] = {}
        self._lock = threading.Lock()

    def _path(self, form_id: str) -> Path:
        if not isinstance(form_id, str) or not ID_RE.match(form_id):
            raise UnknownForm(f"{form_id!r} is not a valid form id")
        path = self.root / f"{form_id}.yaml"
        if not path.is_file():
            raise UnknownForm(f"no form {form_id!r} under {self.root}")
        return path

    def get(self, form_id: str) -> FormDefinition:
        """The parsed form. Raises ``UnknownForm`` or ``FormDefinitionError``."""
        path = self._path(form_id)
        st = os.stat(path)
        stamp = (st.st_mtime_ns, st.st_size)
        with self._lock:
            hit = self._cache.get(form_id)
            if hit and hit[0] == stamp:
                return hit[1]
        form = load_form_file(path)
        with self._lock:
            self._cache[form_id] = (stamp, form)
        return form

    def ids(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.stem for p in self.root.glob("*.yaml") if p.is_file() and ID_RE.match(p.stem))

    def form_hash(self, form_id: str) -> str | None:
        """SHA-256 of the definition file, ``None`` if there is no such form; a definition that does not
        validate raises ``FormDefinitionError`` (so that it cannot be deployed)."""
        try:
            return self.get(form_id).sha256
        except UnknownForm:
            return None

    def check_all(self) -> list[FormIssue]:
        """Every problem in every file (for a CLI ``forms check`` or a start-up check)."""
        issues: list[FormIssue] = []
        for form_id in self.ids():
            try:
                self.get(form_id)
            except FormDefinitionError as exc:
                issues.extend(exc.issues)
        return issues

