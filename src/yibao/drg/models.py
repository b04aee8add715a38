"""Settlement lists (医保结算清单, 4101) of settled inpatient stays, with the group each was given at upload."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from yibao.store.db import Base
from yibao.store.types import ExactNumeric


class DrgCase(Base):
    """One settlement's list as last uploaded (4101 again for the same setl_id replaces it), grouped at upload.

    The settlement's amounts are copied at upload (the settlement table is partitioned by year on PostgreSQL: no
    foreign key to it); a report leaves out a case whose settlement was reversed since."""

    __tablename__ = "drg_case"
    # 清单流水号, answered by 4101
    setl_list_id: Mapped[str] = mapped_column(String(30), primary_key=True)
    setl_id: Mapped[str] = mapped_column(String(30))
    mdtrt_id: Mapped[str] = mapped_column(String(30))
    psn_no: Mapped[str] = mapped_column(String(30))
    fixmedins_code: Mapped[str] = mapped_column(String(12))
    insutype: Mapped[str] = mapped_column(String(6))
    insuplc_admdvs: Mapped[str] = mapped_column(String(6))
    hosp_lv: Mapped[int] = mapped_column(Integer)
    setl_time: Mapped[datetime] = mapped_column(DateTime)
    medfee_sumamt: Mapped[int] = mapped_column(BigInteger)
    fund_pay_sumamt: Mapped[int] = mapped_column(BigInteger)
    psn_part_amt: Mapped[int] = mapped_column(BigInteger)
    # what the list said: the diagnoses and procedures as JSON ([{diag_code, maindiag_flag, …}], [{oprn_oprt_code, main}])
    main_diag_code: Mapped[str] = mapped_column(String(30))
    diseinfo: Mapped[str] = mapped_column(Text)
    oprninfo: Mapped[str] = mapped_column(Text)
    age: Mapped[int] = mapped_column(Integer, default=0)
    gend: Mapped[str] = mapped_column(String(6), default="")
    act_ipt_days: Mapped[int] = mapped_column(Integer, default=0)
    dscg_way: Mapped[str] = mapped_column(String(6), default="")
    nwb_bir_wt: Mapped[int] = mapped_column(Integer, default=0)
    # the grouping (yibao.drg.grouper): DRG group or 0000/QY with the reason; DIP packet or "" with the reason
    tables_version: Mapped[str] = mapped_column(String(100))
    drg_code: Mapped[str] = mapped_column(String(10))
    drg_name: Mapped[str] = mapped_column(String(200))
    drg_weight: Mapped[object] = mapped_column(ExactNumeric(8, 4))
    mdc: Mapped[str] = mapped_column(String(3), default="")
    adrg: Mapped[str] = mapped_column(String(6), default="")
    drg_reason: Mapped[str] = mapped_column(String(500), default="")
    drg_trace: Mapped[str] = mapped_column(Text)
    dip_code: Mapped[str] = mapped_column(String(30))
    dip_name: Mapped[str] = mapped_column(String(200))
    dip_score: Mapped[object] = mapped_column(ExactNumeric(12, 2))
    dip_kind: Mapped[str] = mapped_column(String(20), default="")
    dip_reason: Mapped[str] = mapped_column(String(500), default="")
    dip_trace: Mapped[str] = mapped_column(Text)
    opter: Mapped[str] = mapped_column(String(30), default="")
    uploaded_at: Mapped[datetime] = mapped_column(DateTime)
    __table_args__ = (
        Index("ux_drg_case_setl_id", "setl_id", unique=True),
        Index("ix_drg_case_fixmedins_code_setl_time", "fixmedins_code", "setl_time"),
    )
