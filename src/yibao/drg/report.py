"""The monthly report per hospital: each group's cases, what the fund paid by item, what it pays by group, the difference
(over + / under −), outliers paid by item, and the cases themselves. Pure: a list of the month's cases in, data out;
markdown and a chart from the data."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from yibao.drg.payment import BY_GROUP, HIGH, LOW, UNGROUPED
from yibao.drg.service import MonthCase

FIGURES = ("standard", "item_fund", "fund_to_hospital", "difference")
PAID_BY = (BY_GROUP, HIGH, LOW, UNGROUPED)
PAID_BY_NAMES = {BY_GROUP: "按病组", HIGH: "高倍率（按项目）", LOW: "低倍率（按项目）", UNGROUPED: "未入组（按项目）"}


def _sums() -> dict[str, Any]:
    return {"cases": 0, **dict.fromkeys(FIGURES, 0), "paid_by": dict.fromkeys(PAID_BY, 0)}


def _add(sums: dict[str, Any], case: MonthCase) -> None:
    sums["cases"] += 1
    for name in FIGURES:
        sums[name] += getattr(case.paid, name)
    sums["paid_by"][case.paid.paid_by] += 1


def build(month: str, cases: list[MonthCase]) -> dict[str, Any]:
    """The report as data (amounts in fen): per hospital, per group, per case; totals over all."""
    hospitals: dict[str, dict[str, Any]] = {}
    for case in cases:
        h = hospitals.setdefault(case.fixmedins_code, {"fixmedins_code": case.fixmedins_code, "fixmedins_name": case.fixmedins_name,
                                                       "hosp_lv": case.hosp_lv, "totals": _sums(), "groups": defaultdict(_sums),
                                                       "names": {}, "cases": []})
        code = case.paid.code or "(none)"
        _add(h["totals"], case)
        _add(h["groups"][code], case)
        h["names"][code] = case.paid.name
        h["cases"].append({"setl_id": case.paid.setl_id, "method": case.method, "code": case.paid.code, "drg_code": case.drg_code,
                           "dip_code": case.dip_code, "paid_by": case.paid.paid_by, "reason": case.reason,
                           **{name: getattr(case.paid, name) for name in FIGURES}})
    out_hospitals = []
    totals = _sums()
    for code in sorted(hospitals):
        h = hospitals[code]
        groups = [{"code": g, "name": h["names"][g], **sums} for g, sums in sorted(h["groups"].items())]
        out_hospitals.append({"fixmedins_code": code, "fixmedins_name": h["fixmedins_name"], "hosp_lv": h["hosp_lv"],
                              "totals": h["totals"], "groups": groups, "cases": h["cases"]})
        totals["cases"] += h["totals"]["cases"]
        for name in FIGURES:
            totals[name] += h["totals"][name]
        for kind in PAID_BY:
            totals["paid_by"][kind] += h["totals"]["paid_by"][kind]
    return {"month": month, "unit": "fen", "hospitals": out_hospitals, "totals": totals}


def yuan(fen: int) -> str:
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100:,}.{abs(fen) % 100:02d}"


def markdown(report: dict[str, Any]) -> str:
    t = report["totals"]
    lines = [f"# DRG/DIP payment, {report['month']}", "",
             f"{t['cases']:,} cases in {len(report['hospitals'])} hospitals: by item the funds paid {yuan(t['item_fund'])} yuan, by group "
             f"they pay {yuan(t['fund_to_hospital'])} yuan ({'+' if t['difference'] >= 0 else ''}{yuan(t['difference'])}). "
             + ", ".join(f"{PAID_BY_NAMES[k]} {n:,}" for k, n in t["paid_by"].items()) + ".", ""]
    for h in report["hospitals"]:
        ht = h["totals"]
        lines += [f"## {h['fixmedins_code']} {h['fixmedins_name']} (level {h['hosp_lv']})", "",
                  f"{ht['cases']:,} cases; fund by item {yuan(ht['item_fund'])}, by group {yuan(ht['fund_to_hospital'])}, difference "
                  f"{yuan(ht['difference'])} yuan.", "",
                  "| group | name | cases | case payments | fund by item | fund by group | over (+) / under (−) | paid by item |",
                  "|---|---|---:|---:|---:|---:|---:|---:|"]
        for g in h["groups"]:
            by_item = g["paid_by"][HIGH] + g["paid_by"][LOW] + g["paid_by"][UNGROUPED]
            lines.append(f"| {g['code']} | {g['name']} | {g['cases']} | {yuan(g['standard'])} | {yuan(g['item_fund'])} | "
                         f"{yuan(g['fund_to_hospital'])} | {yuan(g['difference'])} | {by_item} |")
        lines.append("")
    return "\n".join(lines) + "\n"


def chart(hospital: dict[str, Any], path: Any, title: str) -> bool:
    """Over/under payment by group for one hospital (bars in yuan); False without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    groups = hospital["groups"]
    labels = [g["code"] for g in groups]
    values = [g["difference"] / 100 for g in groups]
    figure, axis = plt.subplots(figsize=(max(6, 0.6 * len(groups) + 3), 4))
    axis.bar(range(len(groups)), values, color=["#2a7" if v >= 0 else "#c44" for v in values])
    axis.axhline(0, color="black", linewidth=0.6)
    axis.set_xticks(list(range(len(groups))), labels, rotation=45, ha="right")
    axis.set_ylabel("fund by group − fund by item, yuan")
    axis.set_title(title)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True
