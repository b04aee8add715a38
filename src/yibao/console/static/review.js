// 智能审核 · 违规结算: the settlements claim-review rules fired on (事中审核 at 2207/2304), filtered by rule, severity,
// institution and date range, each with the rule that fired and what it did (拒付 / 转自费 / 提示). Shown after sign-in
// (console.js sends "console:signed-in"); staff see every institution, an institution its own. Text only, never markup.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const TOKEN = "yb.console.token";
  const SEVERITY = { 1: "明确违规", 2: "高度可疑", 3: "轻度可疑" };

  async function get(path) {
    const token = sessionStorage.getItem(TOKEN);
    const reply = await fetch(`/console/api${path}`, { headers: { Accept: "application/json", Authorization: `Bearer ${token}` } });
    const body = await reply.json().catch(() => null);
    if (!reply.ok) throw new Error((body && body.detail) || `查询失败（HTTP ${reply.status}）`);
    return body;
  }

  function cell(row, text, className) {
    const td = document.createElement("td");
    td.textContent = text;
    if (className) td.className = className;
    row.appendChild(td);
  }

  function query() {
    const params = new URLSearchParams();
    const fields = { rule_id: "r-rule", severity: "r-severity", fixmedins_code: "r-code", begin: "r-begin", end: "r-end" };
    for (const [name, id] of Object.entries(fields)) {
      const value = $(id).value.trim();
      if (value) params.set(name, value);
    }
    return params.toString();
  }

  async function load() {
    $("r-error").textContent = "";
    $("r-status").textContent = "查询中…";
    try {
      const settlements = await get(`/review/findings?${query()}`);
      const rows = $("r-rows");
      rows.replaceChildren();
      let count = 0;
      for (const s of settlements) {
        for (const f of s.findings) {
          const row = document.createElement("tr");
          row.dataset.setlId = s.setl_id;
          row.dataset.ruleId = f.rule_id;
          cell(row, s.found_at);
          cell(row, s.setl_id);
          cell(row, s.fixmedins_code);
          cell(row, s.psn_no);
          cell(row, `${f.rule_id} ${f.rule_name}`);
          cell(row, `${f.severity} ${SEVERITY[f.severity] || ""}`);
          cell(row, f.action_name);
          cell(row, f.feedetl_sn ? `${f.feedetl_sn} ${f.med_list_name || f.med_list_codg}` : "本次就诊");
          cell(row, f.amount, "num");
          cell(row, f.content);
          rows.appendChild(row);
          count += 1;
        }
      }
      $("r-status").textContent = settlements.length ? `${settlements.length} 笔结算，${count} 条违规` : "没有符合条件的违规结算";
    } catch (error) {
      $("r-status").textContent = "";
      $("r-error").textContent = error.message;
    }
  }

  async function show(event) {
    const me = event.detail;
    $("view-review").hidden = false;
    $("r-code-row").hidden = me.kind !== "staff";
    const select = $("r-rule");
    if (select.options.length <= 1) {
      try {
        for (const rule of await get("/review/rules")) {
          const option = document.createElement("option");
          option.value = rule.rule_id;
          option.textContent = `${rule.rule_id} ${rule.name}（${rule.action_name}）`;
          select.appendChild(option);
        }
      } catch (error) {
        $("r-error").textContent = error.message;
      }
    }
    await load();
  }

  document.addEventListener("console:signed-in", show);
  $("r-filters").addEventListener("submit", (event) => { event.preventDefault(); load(); });
  $("r-clear").addEventListener("click", () => { $("r-filters").reset(); load(); });
  $("sign-out").addEventListener("click", () => { $("view-review").hidden = true; });
})();
