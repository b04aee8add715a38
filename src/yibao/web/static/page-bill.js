// 电子票据：本人或家庭成员每笔结算的医疗收费电子票据，票据内容、下载票据文件、验证签名，以及按票据号码查验。
"use strict";
(() => {
  const { $, api, esc, say, clearMessages, state, showView, showHome, addService, whoIsCurrent } = window.yibao;
  const view = window.yibaoBill;
  let current = null;  // the bill shown: its content and signature, for 验证签名

  async function showBills() {
    clearMessages();
    showView("view-bill");
    $("bill-who").textContent = whoIsCurrent();
    $("bill-detail").hidden = true;
    $("bill-verify-result").innerHTML = "";
    await loadBills();
  }

  async function loadBills() {
    let rows;
    try {
      rows = await api(`/api/v1/people/${encodeURIComponent(state.current)}/bills`);
    } catch (e) { say("bill-result", e.message, "error"); return; }
    $("bill-list").innerHTML = rows.length ? rows.map((b) => `
      <div class="entry" data-bill="${esc(b.setl_id)}">
        <div class="entry-head"><b>${esc(b.institution)}</b><span class="state${b.status === "valid" ? "" : " off"}">${esc(b.status_name)}</span></div>
        <div>${b.kind === "red" ? "红字票据 · " : ""}金额 ¥ ${esc(b.total)}</div>
        <div class="muted">票据号码 ${esc(b.bill_no)} · ${esc(b.setl_time)}</div>
        <button type="button" class="link" data-open-bill="${esc(b.setl_id)}">查看票据</button>
      </div>`).join("") : `<p class="hint">暂无票据</p>`;
    $("bill-list").querySelectorAll("[data-open-bill]").forEach((b) => b.addEventListener("click", () => openBill(b.dataset.openBill)));
  }

  async function openBill(setlId) {
    clearMessages();
    let bill;
    try {
      bill = await api(`/api/v1/people/${encodeURIComponent(state.current)}/bills/${encodeURIComponent(setlId)}`);
    } catch (e) { say("bill-result", e.message, "error"); return; }
    current = bill;
    const d = bill.document;
    $("bill-title").textContent = d.title;
    $("bill-title").classList.toggle("error-text", bill.kind === "red");
    $("bill-facts").innerHTML = view.row("票据代码", bill.bill_code) + view.row("票据号码", bill.bill_no) + view.row("校验码", bill.check_code)
      + view.row("开票日期", d.issued_at) + view.row("交款人", `${d.payer.name}（${d.payer.certno}）`) + view.row("收款单位", d.institution.name)
      + view.row("结算时间", d.settlement.setl_time) + view.row("票据状态", bill.status_name)
      + (d.original ? view.row("冲红原票据", `${d.original.bill_code}-${d.original.bill_no}`) : "")
      + view.items(d.items, d.total) + view.funds(d.funds);
    $("bill-data").hidden = true;
    $("bill-detail").hidden = false;
    $("bill-detail").scrollIntoView({ block: "start" });
  }

  // the PDF comes with the session's bearer token: fetched, then saved from memory
  async function download() {
    clearMessages();
    if (!current) return;
    try {
      const reply = await fetch(`/api/v1/people/${encodeURIComponent(state.current)}/bills/${encodeURIComponent(current.setl_id)}/pdf`,
                                { headers: { authorization: `Bearer ${localStorage.getItem("yb.token")}` } });
      if (!reply.ok) throw new Error();
      const link = document.createElement("a");
      link.href = URL.createObjectURL(await reply.blob());
      link.download = `${current.bill_code}-${current.bill_no}.pdf`;
      link.click();
      setTimeout(() => URL.revokeObjectURL(link.href), 10000);
      say("bill-result", "票据文件已下载", "ok");
    } catch { say("bill-result", "票据文件下载失败，请稍后再试", "error"); }
  }

  async function checkSignature() {
    clearMessages();
    if (!current) return;
    try {
      const answer = await api("/api/v1/bills/verify", { method: "POST", body: { document: current.document, signature: current.signature } });
      $("bill-verify-result").innerHTML = view.verdict(answer);
    } catch (e) { say("bill-result", e.message, "error"); }
  }

  async function verifyNumber(event) {
    event.preventDefault();
    clearMessages();
    const params = new URLSearchParams({ code: $("bill-verify-code").value.trim(), number: $("bill-verify-number").value.trim(),
                                         check: $("bill-verify-check").value.trim() });
    if (![...params.values()].every(Boolean)) { say("bill-result", "请填写票据代码、票据号码和校验码", "error"); return; }
    try {
      $("bill-verify-result").innerHTML = view.verdict(await api(`/api/v1/bills/verify?${params}`));
    } catch (e) { say("bill-result", e.message, "error"); }
  }

  function exportData() {
    if (!current) return;
    $("bill-data").value = JSON.stringify({ document: current.document, signature: current.signature });
    $("bill-data").hidden = false;
    $("bill-data").select();
    say("bill-result", "票据数据已显示，可复制后在查验页验证签名", "ok");
  }

  addService({ title: "电子票据", hint: "每笔结算的医疗收费电子票据：查看、下载、查验真伪", button: "看票据", open: showBills });
  $("close-bill").addEventListener("click", () => showHome().catch((e) => say("bill-result", e.message, "error")));
  $("bill-pdf").addEventListener("click", download);
  $("bill-check").addEventListener("click", checkSignature);
  $("bill-export").addEventListener("click", exportData);
  $("bill-verify-form").addEventListener("submit", verifyNumber);
})();
