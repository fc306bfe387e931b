"""The house rules of ARCHITECTURE.md, checked on every run of ./test: ruff (pyproject.toml [tool.ruff]) and the
import-linter contracts ([tool.importlinter]) pass; no module-level import cycle anywhere in the four packages;
no private name imported from, or reached into, another production module; modules stay small; the code cites
the repository's own documents."""
from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PACKAGES = ("engine", "scoring", "forms", "web")
#: the longest production module, in lines
MAX_LINES = 500


def _sources(*roots: str):
    for root in roots:
        for path in sorted((ROOT / root).rglob("*.py")):
            if "node_modules" not in path.parts:
                yield path


def test_ruff_passes():
    proc = subprocess.run([str(BIN / "ruff"), "check", "--no-cache", "."], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_import_contracts_hold():
    proc = subprocess.run([str(BIN / "lint-imports"), "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_no_module_level_import_cycle():
    """Every import counts, an import inside a function included: a cycle hidden there is still a cycle."""
    graph = grimp.build_graph(*PACKAGES, cache_dir=None)
    modules = sorted(graph.modules)
    index = {m: i for i, m in enumerate(modules)}
    edges = {m: sorted(graph.find_modules_directly_imported_by(m) & set(index)) for m in modules}
    # Tarjan's strongly connected components, iteratively
    counter, stack, on_stack, low, num, cycles = [0], [], set(), {}, {}, []
    for start in modules:
        if start in num:
            continue
        work = [(start, iter(edges[start]))]
        num[start] = low[start] = counter[0]
        counter[0] += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, it = work[-1]
            nxt = next(it, None)
            if nxt is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == num[node]:
                    component = []
                    while True:
                        m = stack.pop()
                        on_stack.discard(m)
                        component.append(m)
                        if m == node:
                            break
                    if len(component) > 1:
                        cycles.append(sorted(component))
            elif nxt not in num:
                num[nxt] = low[nxt] = counter[0]
                counter[0] += 1
                stack.append(nxt)
                on_stack.add(nxt)
                work.append((nxt, iter(edges[nxt])))
            elif nxt in on_stack:
                low[node] = min(low[node], num[nxt])
    assert not cycles, "import cycles: " + "; ".join(" ⇄ ".join(c) for c in cycles)


def _module_of(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_module(name: str) -> bool:
    rel = ROOT.joinpath(*name.split("."))
    return rel.with_suffix(".py").is_file() or (rel / "__init__.py").is_file()


def _private_uses(path: Path) -> list[str]:
    """``from other import _x``, and ``other._x`` on a module imported from another production module."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    here = _module_of(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    found: list[str] = []
    modules: dict[str, str] = {}  # local name -> module
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([node.module] if node.module else []))
            if base.split(".")[0] not in PACKAGES:
                continue
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {alias.name} from {base}")
                elif _is_module(f"{base}.{alias.name}"):
                    modules[alias.asname or alias.name] = f"{base}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in PACKAGES and alias.asname:
                    modules[alias.asname] = alias.name
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in modules
                and node.attr.startswith("_") and not node.attr.startswith("__")
                and modules[node.value.id] != here):
            found.append(f"{path.relative_to(ROOT)}:{node.lineno} uses {modules[node.value.id]}.{node.attr}")
    return found


def test_no_private_name_crosses_a_production_module():
    found = [use for path in _sources(*PACKAGES) for use in _private_uses(path)]
    assert not found, "private names used across modules:\n" + "\n".join(found)


def test_production_modules_stay_small():
    long = [f"{p.relative_to(ROOT)}: {n} lines" for p in _sources(*PACKAGES)
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES]
    assert not long, f"modules over {MAX_LINES} lines (split them along a named seam):\n" + "\n".join(long)


def test_code_cites_the_repositorys_own_documents():
    """DESIGN.md, DOMAIN.md and SPIFF.md were the founding team's briefs, not part of the repository."""
    pattern = re.compile(r"\b(DESIGN|DOMAIN|SPIFF)\.md")
    found = [f"{p.relative_to(ROOT)}:{text.count(chr(10), 0, m.start()) + 1}"
             for p in [*_sources(*PACKAGES, "tests", "bench"), *sorted((ROOT / "processes").glob("*.*"))]
             if p.name != "test_architecture.py"
             for text in [p.read_text(encoding="utf-8")] for m in pattern.finditer(text)]
    assert not found, "cite ARCHITECTURE.md, README.md or docs/ instead:\n" + "\n".join(found)


#: libraries that take a second or more to import and only some commands need: they load on first use, so a CLI
#: call, a worker or a web process starts without them (every ``regflow`` call and every process the suite starts
#: paid ~2 s for scikit-learn when one module imported the scoring service at its top)
HEAVY_ON_FIRST_USE = ("sklearn", "scipy", "skops", "pyhanko", "fpdf", "fontTools")


def test_starting_a_process_loads_no_heavy_library():
    probe = ("import sys, web.cli, engine.bootstrap, engine.runtime.worker\n"
             "from web import create_app\n"
             "engine.bootstrap.build_runtime()\n"
             f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY_ON_FIRST_USE!r})))")
    proc = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "REGFLOW_DATABASE_URL": "sqlite://"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]", f"imported at start-up: {proc.stdout.strip()}"
