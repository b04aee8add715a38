"""The shape of the code: packages import one way (import-linter's contract), and the diagram in
docs/architecture.md is the one the code draws."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[1]


def test_no_two_packages_import_each_other_even_through_others() -> None:
    graph = grimp.build_graph("yibao", cache_dir=None)
    top = sorted({m.split(".")[1] for m in graph.modules if m.count(".") >= 1 and ".migrations" not in m})
    for a in top:
        for b in top:
            if a < b and graph.chain_exists(f"yibao.{a}", f"yibao.{b}", as_packages=True) \
                    and graph.chain_exists(f"yibao.{b}", f"yibao.{a}", as_packages=True):
                chain = graph.find_shortest_chain(f"yibao.{b}", f"yibao.{a}", as_packages=True)
                raise AssertionError(f"{a} and {b} import each other (e.g. {' → '.join(chain or ())})")


def test_the_layer_contract_holds() -> None:
    result = subprocess.run([str(Path(sys.executable).with_name("lint-imports")), "--no-cache"], cwd=ROOT, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "0 broken" in result.stdout


def test_the_gateway_imports_no_domain() -> None:
    graph = grimp.build_graph("yibao", cache_dir=None)
    for domain in ("registry", "credential", "codes", "files", "encounter", "chronic", "filing", "ledger", "reconciliation", "console",
                   "people"):
        assert not graph.chain_exists("yibao.gateway", f"yibao.{domain}", as_packages=True), domain


def test_the_dependency_diagram_is_the_codes() -> None:
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "architecture.py"), "--check"], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
