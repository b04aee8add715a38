// 票据查验结果的显示：医保码里的“电子票据”页和公开的查验页（verify.html）共用。
"use strict";
window.yibaoBill = (() => {
  const esc = (text) => String(text ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  const FUNDS = { hifp_pay: "统筹基金支付", cvlserv_pay: "公务员医疗补助", hifob_pay: "大额医疗费用补助", hifmi_pay: "大病保险",
                  maf_pay: "医疗救助", hifes_pay: "企业补充医疗保险", oth_pay: "其他基金支付", fund_pay_sumamt: "基金支付合计",
                  acct_pay: "个人账户支付", acct_mulaid_pay: "个人账户共济支付", psn_cash_pay: "个人现金支付", hosp_part_amt: "医院负担" };
  const ALWAYS = ["hifp_pay", "acct_pay", "psn_cash_pay"];
  const zero = (v) => !v || Number(v) === 0;
  const row = (label, value) => `<div class="row"><span class="muted">${esc(label)}</span><span>${esc(value)}</span></div>`;

  function items(list, total) {
    return `<table><thead><tr><th>项目</th><th class="num">金额（元）</th></tr></thead><tbody>${(list || []).map((i) =>
      `<tr><td>${esc(i.name)}</td><td class="num">${esc(i.amount)}</td></tr>`).join("")}
      <tr><td><b>合计</b></td><td class="num"><b>${esc(total)}</b></td></tr></tbody></table>`;
  }

  function funds(split) {
    return Object.keys(FUNDS).filter((k) => ALWAYS.includes(k) || !zero((split || {})[k]))
      .map((k) => row(FUNDS[k], `${(split || {})[k] || "0.00"} 元`)).join("");
  }

  // what the public verification answered: 有效 / 已冲红 / 不存在 / 校验码不符 / 已篡改, and the bill's key facts
  function verdict(answer) {
    const good = answer.status === "valid";
    let html = `<p class="verdict ${good ? "ok-text" : "error-text"}" data-status="${esc(answer.status)}">${esc(answer.result)}</p>`;
    if (answer.status === "absent") return html + `<p class="hint">未查到这张票据，请核对票据代码和号码。</p>`;
    if (answer.status === "mismatch") return html + `<p class="hint">校验码与票据不符，这张票据可能是伪造的。</p>`;
    if (answer.status === "tampered") return html + `<p class="hint">票据内容与签名不符：内容已被改动，不是开票时的票据。</p>`;
    if (answer.status === "cancelled" && !answer.related) html += `<p class="hint">结算已撤销，红字票据正在开具。</p>`;
    if (answer.related) {
      html += answer.status === "cancelled"
        ? `<p class="hint">已被红字票据 ${esc(answer.related.bill_code)}-${esc(answer.related.bill_no)} 冲红（结算已撤销）。</p>`
        : `<p class="hint">冲红原票据 ${esc(answer.related.bill_code)}-${esc(answer.related.bill_no)}。</p>`;
    }
    return html + row("票据", answer.title) + row("票据代码", answer.bill_code) + row("票据号码", answer.bill_no)
      + row("开票日期", answer.issued_at) + row("收款单位", answer.institution) + row("交款人", answer.payer)
      + items(answer.items, answer.total) + funds(answer.funds);
  }

  return { esc, row, items, funds, verdict };
})();
