"""How many days of allowance a birth or miscarriage gives and what they are worth: pure, from the region's policy.

The policy family is `maternity` (src/yibao/policy/data/<admdvs>/maternity.yaml, with its sources)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from yibao.policy.service import Policy

BIRTHS = {"1": "正常产", "2": "助娩产", "3": "剖宫产", "4": "难产"}
DIFFICULT = {"3", "4"}
MISCARRIAGES = {"5": "流产", "6": "引产"}


@dataclass(frozen=True)
class Days:
    days: int
    steps: tuple[str, ...]   # how the days were counted, in Chinese (shown in the app)
    refused: str = ""        # why there are none ("" when there are)


def entitled_days(policy: Policy, matn_type: str, geso_val: int, fetus_cnt: int) -> Days:
    """Days of leave paid for one maternity stay: a birth (matn_type 1–4) or a miscarriage (5, 6) by weeks of pregnancy."""
    get = policy.get
    if matn_type in BIRTHS:
        days = int(get("maternity.base_days.all"))
        steps = [f"{BIRTHS[matn_type]}：产假{days}天"]
        if matn_type in DIFFICULT:
            extra = int(get("maternity.difficult_birth_days.all"))
            days += extra
            steps.append(f"难产或剖宫产增加{extra}天")
        if fetus_cnt > 1:
            extra = (fetus_cnt - 1) * int(get("maternity.extra_baby_days.all"))
            days += extra
            steps.append(f"多胞胎（{fetus_cnt}胎）增加{extra}天")
        local = int(get("maternity.local_extension_days.all"))
        if local:
            days += local
            steps.append(f"本省延长产假{local}天")
        return Days(days, tuple(steps))
    if matn_type in MISCARRIAGES:
        if geso_val <= 0:
            return Days(0, (), "流产或引产须上传孕周（geso_val），无法计发生育津贴")
        late = geso_val >= int(get("maternity.miscarriage_late_from_weeks.all"))
        days = int(get("maternity.miscarriage_late_days.all" if late else "maternity.miscarriage_early_days.all"))
        return Days(days, (f"{MISCARRIAGES[matn_type]}，孕{geso_val}周：产假{days}天",))
    if not matn_type.strip():
        return Days(0, (), "生育住院未上传生育类别（matn_type），无法计发生育津贴")
    return Days(0, (), f"生育类别 {matn_type} 不计发生育津贴")


def allowance_fen(monthly_wage_fen: int, days: int) -> int:
    """Monthly average wage ÷ 30 × days, rounded to the fen half up (社会保险法 第五十六条)."""
    return int((Decimal(monthly_wage_fen) * days / 30).quantize(Decimal(1), rounding=ROUND_HALF_UP))
