#!/usr/bin/env python3
"""Checks the layering of harness/src (docs/architecture.md):

- the file-level module import graph has no cycles (a file imports another
  when it names a path into it: `use crate::a::b`, `crate::a::b::f(..)`,
  `super::x`, including `use` groups);
- `report/` never imports `backend/`, and `op/` never imports `backend/`,
  `run`, `report/` or `fingerprint`.

A parent declaring its children (`mod x;`) is containment, not an import;
a parent naming an item inside a child (`libtorch::TchEngine`) is an import. Prints the cycles or violations and exits 1; prints one line and
exits 0 when the graph is clean.
"""
import re
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "harness" / "src"


def module_of(path: Path) -> tuple:
    rel = path.relative_to(SRC).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return tuple(parts)


def strip_comments(text: str) -> str:
    text = re.sub(r"//[^\n]*", "", text)
    return re.sub(r"/\*.*?\*/", "", text, flags=re.S)


def expand_use(body: str) -> list:
    """`a::{b, c::{d, e}}` -> [a::b, a::c::d, a::c::e] (enough for our code)."""
    body = body.strip()
    m = re.match(r"^(.*?)::\{(.*)\}$", body, flags=re.S)
    if not m:
        return [body]
    prefix, inner = m.group(1), m.group(2)
    items, depth, cur = [], 0, ""
    for ch in inner:
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        if ch == "," and depth == 0:
            items.append(cur)
            cur = ""
        else:
            cur += ch
    items.append(cur)
    out = []
    for it in items:
        it = it.strip()
        if not it or it == "self":
            out.append(prefix)
            continue
        out.extend(prefix + "::" + p for p in expand_use(it))
    return out


def paths_in(text: str) -> list:
    text = strip_comments(text)
    paths = []
    for m in re.finditer(r"\buse\s+([^;]+);", text):
        paths.extend(expand_use(m.group(1)))
    for m in re.finditer(r"(?<![\w:])((?:crate|super)(?:::(?:super|\w+))+)", text):
        paths.append(m.group(1))
    return paths


def resolve(here: tuple, path: str, modules: set):
    """The module a `crate::`/`super::` path lands in (its longest module prefix)."""
    parts = [re.sub(r"\s+as\s+\w+$", "", p.strip()) for p in path.split("::")]
    if parts[0] == "crate":
        target, rest = (), parts[1:]
    elif parts[0] == "super":
        target, rest = here, parts
        while rest and rest[0] == "super":
            target, rest = target[:-1], rest[1:]
    else:
        return None
    for p in rest:
        if target + (p,) not in modules:
            break
        target = target + (p,)
    return target


TESTS = re.compile(r"#\[cfg\(test\)\]\s*(?:pub(?:\(crate\))?\s+)?mod\s+\w+\s*\{")


def main() -> int:
    files = {module_of(f): f for f in SRC.rglob("*.rs")}
    modules = set(files)
    edges = {m: set() for m in modules}
    for m, f in files.items():
        text = f.read_text()
        cut = TESTS.search(text)
        if cut:  # test modules are not part of the layering
            text = text[: cut.start()]
        for p in paths_in(text):
            t = resolve(m, p, modules)
            # Itself or the crate root (lib.rs only declares modules).
            if t is None or t == () or t == m:
                continue
            edges[m].add(t)
    problems = []
    for m, ts in edges.items():
        for t in ts:
            if m[:1] == ("report",) and t[:1] == ("backend",):
                problems.append(f"report/ imports backend/: {'/'.join(m)} -> {'/'.join(t)}")
            if m[:1] == ("op",) and t[:1] in (("backend",), ("run",), ("report",), ("fingerprint",)):
                problems.append(f"op/ imports {t[0]}: {'/'.join(m)} -> {'/'.join(t)}")
    # Tarjan's strongly connected components.
    index, low, stack, on, sccs, n = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = n[0]
        n[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                sccs.append(comp)

    sys.setrecursionlimit(10000)
    for v in sorted(modules):
        if v not in index:
            visit(v)
    for comp in sccs:
        names = sorted("/".join(c) or "lib" for c in comp)
        problems.append("import cycle: " + " <-> ".join(names))
    if problems:
        print("\n".join(problems))
        return 1
    n_edges = sum(len(t) for t in edges.values())
    print(f"module graph: {len(modules)} modules, {n_edges} import edges, no cycles; report/ and op/ layered")
    return 0


if __name__ == "__main__":
    sys.exit(main())
