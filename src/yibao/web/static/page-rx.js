// 电子处方: the person's (or a bound family member's) e-prescriptions; choose a designated pharmacy and pickup or delivery.
(() => {
  const { $, api, esc, say, clearMessages, state, showView, showHome, addService, whoIsCurrent } = window.yibao;
  const base = () => `/api/v1/people/${encodeURIComponent(state.current)}/prescriptions`;
  let opened = null;

  async function showRx() {
    clearMessages();
    showView("view-rx");
    $("rx-who").textContent = whoIsCurrent();
    $("rx-detail").hidden = true;
    opened = null;
    await loadList();
  }

  function drugs(rx) {
    return rx.drugs.map((d) => `<div>${esc(d.name)} ${esc(d.spec)} × ${esc(d.cnt)}${esc(d.unit)}${d.usage ? `，${esc(d.usage)}` : ""}</div>`).join("");
  }

  function where(rx) {
    if (!rx.delivery_mode && !rx.pharmacy_name) return "尚未选择取药方式";
    const place = rx.pharmacy_name ? `${rx.pharmacy_name}` : "";
    const how = rx.delivery_mode_name ? `（${rx.delivery_mode_name}${rx.delv_addr ? `：${rx.delv_addr}` : ""}）` : "";
    return `${place}${how}${rx.delv_stas_name ? ` · 配送状态：${rx.delv_stas_name}` : ""}`;
  }

  async function loadList() {
    let rows = [];
    try {
      rows = await api(base());
    } catch (e) { say("rx-result", e.message, "error"); return; }
    $("rx-list").innerHTML = rows.length ? rows.map((rx) => `
      <div class="entry" data-rx-entry="${esc(rx.hi_rxno)}">
        <div class="entry-head"><b>${esc(rx.fixmedins_name)}</b><span class="state${rx.state_code === "uploaded" ? "" : " off"}">${esc(rx.state)}</span></div>
        <div>${esc(rx.diag_name)}${rx.renewal ? "（慢特病续方）" : ""} · ${esc(rx.prsc_dr_name)}</div>
        ${drugs(rx)}
        <div class="muted">开具于 ${esc(rx.prsc_time)}，有效至 ${esc(rx.valid_end_time)}</div>
        <div class="muted">取药：${esc(where(rx))}</div>
        ${rx.epc_qrcd ? `<div>取药码：<b class="rx-code">${esc(rx.epc_qrcd)}</b></div>` : ""}
        ${rx.may_choose ? `<button type="button" class="link" data-rx-open="${esc(rx.hi_rxno)}">选择取药方式</button>` : ""}
      </div>`).join("") : `<p class="hint">暂无电子处方</p>`;
    $("rx-list").querySelectorAll("[data-rx-open]").forEach((b) => b.addEventListener("click", () => {
      clearMessages();
      openRx(b.dataset.rxOpen).catch((e) => say("rx-result", e.message, "error"));
    }));
  }

  async function openRx(hiRxno) {
    const rx = await api(`${base()}/${encodeURIComponent(hiRxno)}`);
    opened = rx;
    $("rx-info").innerHTML = `<div><b>${esc(rx.fixmedins_name)}</b> · ${esc(rx.prsc_dept_name)} ${esc(rx.prsc_dr_name)}</div>
      <div>${esc(rx.diag_name)}</div>${drugs(rx)}<div class="muted">有效至 ${esc(rx.valid_end_time)}</div>`;
    $("rx-pharmacy-label").hidden = rx.pharmacy_fixed;
    $("rx-pharmacy").innerHTML = rx.pharmacies.map((p) =>
      `<option value="${esc(p.code)}"${p.code === rx.pharmacy_code ? " selected" : ""}>${esc(p.name)}</option>`).join("");
    $("rx-mode").value = rx.delivery_mode || "1";
    $("rx-addr").value = rx.delv_addr || "";
    $("rx-addr-label").hidden = $("rx-mode").value !== "2";
    $("rx-detail").hidden = false;
  }

  $("rx-mode").addEventListener("change", () => { $("rx-addr-label").hidden = $("rx-mode").value !== "2"; });
  $("rx-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    clearMessages();
    if (!opened) return;
    const body = { delivery_mode: $("rx-mode").value, fixmedins_code: opened.pharmacy_fixed ? "" : $("rx-pharmacy").value,
                   delv_addr: $("rx-addr").value.trim() };
    try {
      const made = await api(`${base()}/${encodeURIComponent(opened.hi_rxno)}/choice`, { method: "POST", body });
      say("rx-result", `已选择：${where(made)}`, "ok");
      $("rx-detail").hidden = true;
      opened = null;
    } catch (e) { say("rx-result", e.message, "error"); }
    await loadList();
  });
  $("close-rx").addEventListener("click", () => showHome().catch((e) => say("rx-result", e.message, "error")));

  addService({ title: "电子处方", hint: "查看医生开具的处方，选择定点药店取药或配送到家", button: "去取药", open: showRx });
})();
