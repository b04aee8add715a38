"""Summing replayed settlements into the what-if's report: pure, mergeable across worker processes."""

from __future__ import annotations

import heapq
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from yibao.whatif.replay import FUNDS, Replayed, as_recorded, same_amounts

# what each scenario sums: the funds, their total, and the person's part (account + cash)
FIGURES = (*FUNDS, "fund_pay_sumamt", "psn_part_amt", "acct_pay", "psn_cash_pay")
SCENARIOS = ("recorded", "current", "changed")
TOP = 20
HOSPITAL_LEVELS = {1: "一级", 2: "二级", 3: "三级"}
INSURANCE_TYPES = {"310": "职工基本医疗保险", "390": "城乡居民基本医疗保险"}


def _zero() -> dict[str, int]:
    return dict.fromkeys(FIGURES, 0)


@dataclass
class Summary:
    """Sums by (insurance type, hospital level) for each scenario; the people whose own payments changed most."""

    settlements: int = 0
    changed: int = 0                # settlements whose amounts differ between the current and the changed policy
    unreproduced: int = 0           # settlements the current policy does not replay to what was recorded
    refused: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    sums: dict[str, dict[tuple[str, int], dict[str, int]]] = field(
        default_factory=lambda: {s: defaultdict(_zero) for s in SCENARIOS})
    people: dict[str, int] = field(default_factory=dict)  # psn_no → change of own payments (changed − current), when not 0
    # per settlement changed: (setl_id, psn_no, change of the fund total) — the test's and the reader's audit trail
    examples: list[tuple[str, str, int]] = field(default_factory=list)

    def add_person(self, current: list[Replayed], changed: list[Replayed]) -> None:
        delta = 0
        for before, after in zip(current, changed, strict=True):
            facts = before.facts
            key = (facts.insutype, facts.hosp_lv)
            self.settlements += 1
            for scenario, answer in (("recorded", as_recorded(facts)), ("current", before), ("changed", after)):
                sums = self.sums[scenario][key]
                for name in FIGURES:
                    sums[name] += getattr(answer, name)
            for answer in (before, after):
                if answer.refused:
                    self.refused[answer.refused] += 1
            if not same_amounts(before, as_recorded(facts)):
                self.unreproduced += 1
            if not same_amounts(before, after):
                self.changed += 1
                delta += after.psn_part_amt - before.psn_part_amt
                if len(self.examples) < 1000:
                    self.examples.append((facts.setl_id, facts.psn_no, after.fund_pay_sumamt - before.fund_pay_sumamt))
        if delta and current:
            self.people[current[0].facts.psn_no] = self.people.get(current[0].facts.psn_no, 0) + delta
        if len(self.people) > 20 * TOP:
            self._trim()

    def _trim(self) -> None:
        keep = set(heapq.nlargest(TOP, self.people, key=lambda p: self.people[p]))
        keep |= set(heapq.nsmallest(TOP, self.people, key=lambda p: self.people[p]))
        self.people = {p: self.people[p] for p in keep}

    def merge(self, other: Summary) -> None:
        self.settlements += other.settlements
        self.changed += other.changed
        self.unreproduced += other.unreproduced
        for reason, n in other.refused.items():
            self.refused[reason] += n
        for scenario in SCENARIOS:
            for key, sums in other.sums[scenario].items():
                mine = self.sums[scenario][key]
                for name in FIGURES:
                    mine[name] += sums[name]
        for psn_no, delta in other.people.items():
            self.people[psn_no] = self.people.get(psn_no, 0) + delta
        self.examples.extend(other.examples[: max(0, 1000 - len(self.examples))])
        if len(self.people) > 20 * TOP:
            self._trim()

    def totals(self, scenario: str) -> dict[str, int]:
        out = _zero()
        for sums in self.sums[scenario].values():
            for name in FIGURES:
                out[name] += sums[name]
        return out

    def as_json(self) -> dict[str, Any]:
        """The report as data: every amount in fen."""
        rows = []
        for key in sorted(set(self.sums["current"]) | set(self.sums["changed"])):
            insutype, level = key
            current, changed = self.sums["current"][key], self.sums["changed"][key]
            rows.append({"insutype": insutype, "hosp_lv": level,
                         "current": dict(current), "changed": dict(changed),
                         "change": {name: changed[name] - current[name] for name in FIGURES}})
        current, changed = self.totals("current"), self.totals("changed")
        return {
            "settlements": self.settlements, "changed_settlements": self.changed,
            "unreproduced_settlements": self.unreproduced, "refused": dict(self.refused),
            "recorded": self.totals("recorded"), "current": current, "changed": changed,
            "change": {name: changed[name] - current[name] for name in FIGURES},
            "by_insutype_and_level": rows,
            "most_affected": {
                "paying_more": [{"psn_no": p, "change": d} for p, d in
                                heapq.nlargest(TOP, self.people.items(), key=lambda x: x[1]) if d > 0],
                "paying_less": [{"psn_no": p, "change": d} for p, d in
                                heapq.nsmallest(TOP, self.people.items(), key=lambda x: x[1]) if d < 0]},
        }


def yuan(fen: int) -> str:
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100:,}.{abs(fen) % 100:02d}"


FIGURE_NAMES = {"hifp_pay": "统筹基金", "cvlserv_pay": "公务员医疗补助", "hifob_pay": "职工大额补助", "hifmi_pay": "居民大病保险",
                "maf_pay": "医疗救助", "fund_pay_sumamt": "基金支付合计", "psn_part_amt": "个人负担", "acct_pay": "个人账户支付",
                "psn_cash_pay": "个人现金支付"}


def markdown(report: dict[str, Any], title: str) -> str:
    lines = [f"# {title}", "",
             f"{report['settlements']:,} settlements replayed; {report['changed_settlements']:,} pay differently under the changed policy. "
             f"Under the current policy {report['settlements'] - report['unreproduced_settlements']:,} replay exactly to what was "
             f"recorded ({report['unreproduced_settlements']:,} do not: see docs/policy.md, what a replay cannot know).", "",
             "| figure | recorded | current policy | changed policy | change |", "|---|---:|---:|---:|---:|"]
    for name in FIGURES:
        lines.append(f"| {FIGURE_NAMES[name]} ({name}) | {yuan(report['recorded'][name])} | {yuan(report['current'][name])} | "
                     f"{yuan(report['changed'][name])} | {yuan(report['change'][name])} |")
    lines += ["", "By insurance type and hospital level (yuan):", "",
              "| insurance | level | fund total, current | change | own payments, current | change |", "|---|---|---:|---:|---:|---:|"]
    for row in report["by_insutype_and_level"]:
        lines.append(f"| {INSURANCE_TYPES.get(row['insutype'], row['insutype'])} | {HOSPITAL_LEVELS.get(row['hosp_lv'], row['hosp_lv'])} | "
                     f"{yuan(row['current']['fund_pay_sumamt'])} | {yuan(row['change']['fund_pay_sumamt'])} | "
                     f"{yuan(row['current']['psn_part_amt'])} | {yuan(row['change']['psn_part_amt'])} |")
    for label, key in (("People paying most more", "paying_more"), ("People paying most less", "paying_less")):
        found = report["most_affected"][key]
        if found:
            lines += ["", f"{label} (own payments over the year, yuan):", "", "| psn_no | change |", "|---|---:|"]
            lines += [f"| {p['psn_no']} | {yuan(p['change'])} |" for p in found]
    if report["refused"]:
        lines += ["", "Settlements a policy could not settle:", ""] + [f"- {n:,}: {reason}" for reason, n in report["refused"].items()]
    return "\n".join(lines) + "\n"


def chart(report: dict[str, Any], path: Any, title: str) -> bool:
    """A bar chart of each fund's and the people's change, by insurance type and level; False without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    rows = report["by_insutype_and_level"]
    labels = [f"{row['insutype']}/L{row['hosp_lv']}" for row in rows]
    figure, axis = plt.subplots(figsize=(max(6, 1.2 * len(rows) + 3), 4))
    width = 0.38
    positions = range(len(rows))
    axis.bar([p - width / 2 for p in positions], [row["change"]["fund_pay_sumamt"] / 100 for row in rows], width, label="funds")
    axis.bar([p + width / 2 for p in positions], [row["change"]["psn_part_amt"] / 100 for row in rows], width, label="people's own")
    axis.axhline(0, color="black", linewidth=0.6)
    axis.set_xticks(list(positions), labels)
    axis.set_ylabel("change, yuan")
    axis.set_title(title)
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return True
