"""A bill as a PDF (fpdf2): its content, the check code, and a QR code that leads to the public verification.

The CJK glyphs come from Debian's ``fonts-noto-cjk`` (Noto Sans CJK SC, in a TrueType collection), found at run time;
`scripts/browser.sh` installs it (``make test`` runs it). fpdf2 embeds only the glyphs the bill uses.
"""

from __future__ import annotations

import io
import shutil
import subprocess
from functools import lru_cache
from pathlib import Path
from typing import Any

import segno
from fpdf import FPDF, FontFace

from yibao.bill.document import FUNDS
from yibao.core.errors import YibaoError

FONT_CANDIDATES = ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc", "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
                   "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc", "/usr/local/share/fonts/NotoSansCJK-Regular.ttc")
SC_IN_COLLECTION = 2  # Noto Sans CJK's collection: JP 0, KR 1, SC 2, TC 3, HK 4


class FontMissing(YibaoError):
    http_status = 503

    def __init__(self) -> None:
        super().__init__("票据版式文件暂不可用（缺少中文字体 fonts-noto-cjk），请稍后再试")
        self.reason = "font"


@lru_cache(maxsize=1)
def font_path() -> tuple[str, int] | None:
    """The CJK font file and the face's number in it, or None."""
    for candidate in FONT_CANDIDATES:
        if Path(candidate).is_file():
            return candidate, SC_IN_COLLECTION
    if shutil.which("fc-match"):
        found = subprocess.run(["fc-match", "-f", "%{file}", "Noto Sans CJK SC"], capture_output=True, text=True, check=False).stdout
        if found and Path(found).is_file() and "CJK" in found:
            return found, SC_IN_COLLECTION if found.endswith(".ttc") else 0
    return None


def qr_png(text: str) -> bytes:
    out = io.BytesIO()
    segno.make(text, error="m").save(out, kind="png", scale=6, border=2)
    return out.getvalue()


def render(content: dict[str, Any], *, check: str, status: str, verify_url: str) -> bytes:
    found = font_path()
    if found is None:
        raise FontMissing()
    pdf = FPDF(format=(148.0, 210.0), orientation="L")  # A5 landscape
    pdf.set_auto_page_break(auto=True, margin=10)
    pdf.set_title(f"{content.get('title', '')} {content.get('bill_code', '')}-{content.get('bill_no', '')}")
    pdf.set_creator("yibao")
    pdf.add_page()
    pdf.add_font("cjk", fname=found[0], collection_font_number=found[1])
    red = content.get("kind") == "red"
    if red:
        pdf.set_text_color(170, 20, 20)
    pdf.set_font("cjk", size=16)
    pdf.cell(0, 10, str(content.get("title", "")), align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.image(io.BytesIO(qr_png(verify_url)), x=pdf.w - 42, y=8, w=32, h=32)
    pdf.set_font("cjk", size=9)
    settlement, payer, institution = content.get("settlement", {}), content.get("payer", {}), content.get("institution", {})
    head = [("票据代码", content.get("bill_code", "")), ("票据号码", content.get("bill_no", "")), ("校验码", check),
            ("开票日期", content.get("issued_at", "")), ("交款人", f"{payer.get('name', '')}（{payer.get('certno', '')}）"),
            ("收款单位", f"{institution.get('name', '')}（{institution.get('code', '')}）"),
            ("结算编号", settlement.get("setl_id", "")), ("结算时间", settlement.get("setl_time", "")), ("票据状态", status)]
    if red and content.get("original"):
        original = content["original"]
        head.append(("冲红原票据", f"{original.get('bill_code', '')}-{original.get('bill_no', '')}"))
    for label, value in head:
        pdf.cell(24, 5.5, label)
        pdf.cell(0, 5.5, str(value), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    pdf.set_font("cjk", size=10)
    pdf.cell(0, 6, "项目", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("cjk", size=9)
    with pdf.table(col_widths=(60, 30), text_align=("LEFT", "RIGHT"), width=90, align="LEFT", line_height=5.5,
                   headings_style=FontFace(emphasis="")) as table:
        table.row(["项目名称", "金额（元）"])
        for item in content.get("items", []):
            table.row([str(item.get("name", "")), str(item.get("amount", ""))])
        table.row(["合计", str(content.get("total", ""))])
    pdf.ln(2)
    funds = content.get("funds", {})
    shown = [(FUNDS[name], funds.get(name, "0.00")) for name in FUNDS if funds.get(name, "0.00") not in ("0.00", "-0.00")
             or name in ("hifp_pay", "acct_pay", "psn_cash_pay")]
    pdf.multi_cell(0, 5.5, "医保结算：" + "；".join(f"{n} {v}元" for n, v in shown), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(1)
    issuer = content.get("issuer", {})
    pdf.set_text_color(90, 90, 90)
    pdf.set_font("cjk", size=7.5)
    signer = f"开票节点 {issuer.get('node', '')} · SM2 签名密钥 {issuer.get('key_id', '')}"
    pdf.multi_cell(0, 4.5, f"{signer}。扫描右上角二维码或访问以下地址查验真伪：", new_x="LMARGIN", new_y="NEXT")
    pdf.multi_cell(0, 4.5, verify_url, new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
