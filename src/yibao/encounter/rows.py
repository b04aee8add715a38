"""Typed rows of visits, fee lines, settlements and catalogue items (`yibao.store.sql`).

Visits and settlements are changed and written back by the services: these structs are mutable."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import msgspec


class VisitRow(msgspec.Struct, gc=False):
    """visit: every column."""

    mdtrt_id: str
    psn_no: str
    insutype: str
    fixmedins_code: str
    kind: str
    med_type: str
    ipt_otp_no: str
    mdtrt_cert_type: str
    mdtrt_cert_no: str
    begntime: datetime
    endtime: datetime | None
    status: str
    dept_code: str
    dept_name: str
    atddr_no: str
    dr_name: str
    dise_codg: str
    dise_name: str
    main_cond_dscr: str
    adm_bed: str
    dscg_way: str
    coner_name: str
    tel: str
    medrcdno: str
    adm_diag_dscr: str
    dscg_dept_codg: str
    dscg_dept_name: str
    dscg_bed: str
    oprn_oprt_code: str
    oprn_oprt_name: str
    die_date: date | None
    fpsc_no: str
    matn_type: str
    birctrl_type: str
    birctrl_matn_date: date | None
    latechb_flag: str
    pret_flag: str
    cop_flag: str
    geso_val: int
    fetts: int
    fetus_cnt: int
    opter: str
    opter_name: str
    opt_time: datetime | None
    mdtrtarea_admvs: str
    insuplc_admdvs: str
    dedc_paid_fen: int
    admission_no: int


class FeeLineRow(msgspec.Struct, gc=False):
    """fee_line: every column."""

    id: int
    mdtrt_id: str
    feedetl_sn: str
    chrg_bchno: str
    med_list_codg: str
    medins_list_codg: str
    med_list_name: str
    list_type: str
    rxno: str
    fee_ocur_time: datetime
    cnt: Decimal
    pric: Decimal
    det_item_fee_sumamt_fen: int
    bilg_dept_codg: str
    bilg_dept_name: str
    bilg_dr_codg: str
    bilg_dr_name: str
    chrgitm_lv: str
    med_chrgitm_type: str
    selfpay_prop: Decimal
    pric_uplmt_fen: int | None
    fulamt_ownpay_fen: int
    overlmt_fen: int
    preselfpay_fen: int
    inscp_scp_fen: int
    lmt_used_flag: str
    memo: str
    status: str
    setl_id: str | None
    dise_codg: str
    drord_no: str
    init_feedetl_sn: str
    sin_dos_dscr: str
    used_frqu_dscr: str
    prd_days: Decimal
    medc_way_dscr: str
    acord_dept_codg: str
    acord_dept_name: str
    orders_dr_code: str
    orders_dr_name: str
    hosp_appr_flag: str
    tcmdrug_used_way: str
    etip_flag: str
    etip_hosp_code: str
    dscg_tkdrug_flag: str
    matn_fee_flag: str
    opter: str
    opter_name: str
    opt_time: datetime | None


class SettlementRow(msgspec.Struct, gc=False):
    """settlement: every column."""

    setl_id: str
    mdtrt_id: str
    psn_no: str
    fixmedins_code: str
    insutype: str
    psn_type: str
    cvlserv_flag: str
    med_type: str
    kind: str
    setl_time: datetime
    year: int
    refd_setl_flag: str
    revs_setl_id: str | None
    mid_setl_flag: str
    medins_setl_id: str
    mdtrt_cert_type: str
    clr_type: str
    clr_way: str
    clr_optins: str
    mdtrtarea_admvs: str
    invono: str
    medfee_sumamt: int
    fulamt_ownpay_amt: int
    overlmt_selfpay: int
    preselfpay_amt: int
    inscp_scp_amt: int
    act_pay_dedc: int
    hifp_pay: int
    pool_prop_selfpay: Decimal
    cvlserv_pay: int
    hifes_pay: int
    hifmi_pay: int
    hifob_pay: int
    maf_pay: int
    oth_pay: int
    fund_pay_sumamt: int
    psn_part_amt: int
    acct_pay: int
    acct_mulaid_pay: int
    psn_cash_pay: int
    hosp_part_amt: int
    balc: int
    ytd_otp_dedc: int
    ytd_hifp_otp: int
    ytd_inscp_self: int
    ytd_admission: int
    opsp_dise_code: str
    ytd_opsp_dedc: int
    setldetail: str
    opter: str
    opter_name: str
    paid_by: str = ""


class CatalogItemRow(msgspec.Struct, gc=False):
    """catalog_item: every column."""

    id: int
    med_list_codg: str
    med_list_name: str
    list_type: str
    med_chrgitm_type: str
    chrgitm_lv: str
    selfpay_prop: Decimal
    pric_uplmt_fen: int | None
    lmt_gend: str | None
    lmt_age_min: int | None
    lmt_age_max: int | None
    lmt_hosp_lv: int | None
    rx_flag: str
    spec: str
    dosform: str
    pacunt: str
    prodentp_name: str
    lmt_used_flag: str
    memo: str
    begndate: date
    enddate: date | None
    vali_flag: str
    ver: str
