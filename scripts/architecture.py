"""The package dependency diagram in docs/architecture.md, generated from the code.

    .venv/bin/python scripts/architecture.py          # rewrite the diagram between the markers
    .venv/bin/python scripts/architecture.py --check  # exit 1 if the diagram is not what the code says

Edges are imports between yibao's top-level packages (every import, function-level ones too, found by grimp,
the graph builder import-linter uses), with the transitive ones left out so the picture stays readable: an arrow
A → B means A imports B and B is not already reached through another arrow of A. The imports of the gateway's
contract (`gateway.contract`, `gateway.envelope`) are drawn as one dotted arrow per domain.
"""

from __future__ import annotations

import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "architecture.md"
BEGIN, END = "<!-- dependency-graph:begin (scripts/architecture.py) -->", "<!-- dependency-graph:end -->"
CONTRACT = {"yibao.gateway.contract", "yibao.gateway.envelope"}


def package_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def edges() -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    """(imports between packages, imports of the gateway's contract by other packages)."""
    graph = grimp.build_graph("yibao", cache_dir=None)
    plain: set[tuple[str, str]] = set()
    contract: set[tuple[str, str]] = set()
    for module in graph.modules:
        if ".migrations" in module:
            continue
        for imported in graph.find_modules_directly_imported_by(module):
            a, b = package_of(module), package_of(imported)
            if a == b or a == "yibao" or b == "yibao":
                continue
            (contract if imported in CONTRACT else plain).add((a, b))
    return plain, contract - plain


def reduce(pairs: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """Drop A → C when A reaches C through another package (the graph has no cycles: import-linter checks that)."""
    out: dict[str, set[str]] = {}
    for a, b in pairs:
        out.setdefault(a, set()).add(b)

    def reach(start: str, skip: tuple[str, str]) -> set[str]:
        seen: set[str] = set()
        stack = [b for b in out.get(start, ()) if (start, b) != skip]
        while stack:
            node = stack.pop()
            if node not in seen:
                seen.add(node)
                stack.extend(out.get(node, ()))
        return seen

    return {(a, b) for a, b in pairs if b not in reach(a, (a, b))}


def mermaid() -> str:
    plain, contract = edges()
    lines = ["```mermaid", "flowchart TD"]
    lines += [f"    {a} --> {b}" for a, b in sorted(reduce(plain))]
    lines += [f"    {a} -.-> gateway" for a, _ in sorted(contract)]
    lines.append("```")
    return "\n".join(lines)


def main() -> int:
    text = DOC.read_text(encoding="utf-8")
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    wanted = f"{head}{BEGIN}\n{mermaid()}\n{END}{tail}"
    if "--check" in sys.argv:
        if wanted != text:
            print("docs/architecture.md: the dependency diagram is not the code's: run scripts/architecture.py")
            return 1
        return 0
    DOC.write_text(wanted, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
