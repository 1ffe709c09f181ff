// Conveyor web console: submits images, follows jobs and shows the pipeline live.
// Plain ES2020 without modules or dependencies, since the ingress embeds and serves it as is.
// Data only ever reaches the DOM through textContent or attributes, never innerHTML.
"use strict";

(() => {
  const KEY_STORAGE = "conveyor.apiKey";
  const PAGE_SIZE = 25;
  const CHART_WINDOW_MS = 5 * 60 * 1000;
  const CHART_GAP_MS = 5000;
  const TERMINAL = new Set(["succeeded", "failed", "expired", "cancelled"]);
  // A summary arrives every second; this long without any byte means the stream is stuck.
  const STREAM_STALL_MS = 10000;

  const $ = (id) => document.getElementById(id);
  const el = {
    connection: $("connection"),
    keyForm: $("api-key-form"),
    keyInput: $("api-key"),
    message: $("message"),
    dropZone: $("drop-zone"),
    fileInput: $("file-input"),
    preview: $("preview"),
    currentJob: $("current-job"),
    currentJobId: $("current-job-id"),
    currentJobStatus: $("current-job-status"),
    currentJobModel: $("current-job-model"),
    currentJobError: $("current-job-error"),
    top5: $("top5"),
    timings: $("timings"),
    summary: $("summary"),
    chart: $("throughput-chart"),
    workers: $("workers"),
    models: $("models"),
    jobsBody: document.querySelector("#jobs-table tbody"),
    loadMore: $("load-more"),
  };

  const state = {
    apiKey: sessionStorage.getItem(KEY_STORAGE) || "",
    current: null,          // merged JSON of the job submitted last
    pollAbort: null,        // aborts the long poll of a previous current job
    jobs: new Map(),        // job_id -> merged job JSON for the rows shown
    removed: new Set(),     // deleted jobs, so that late events do not bring them back
    rowLimit: PAGE_SIZE,
    next: null,
    points: [],             // {at, rate, queued}, one per summary
    previewURL: null,
    droppedReloadAt: 0,     // when the table was last re-read because the feed left changes out
  };

  // ---- API ----------------------------------------------------------------

  class APIError extends Error {
    constructor(status, message, retryAfter) {
      super(message);
      this.status = status;
      this.retryAfter = retryAfter;
    }
  }

  function authHeaders(extra = {}) {
    const headers = { ...extra };
    if (state.apiKey) headers.Authorization = `Bearer ${state.apiKey}`;
    return headers;
  }

  // Calls the API and returns the parsed JSON body; throws APIError on any non-2xx answer.
  async function api(path, { method = "GET", body, signal } = {}) {
    const key = state.apiKey;
    const init = { method, signal, headers: authHeaders({ Accept: "application/json" }) };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(path, init);
    let data = null;
    try {
      data = await response.json();
    } catch {
      data = null;
    }
    if (!response.ok) {
      const text = (data && typeof data.error === "string" && data.error) || response.statusText || "request failed";
      const error = new APIError(response.status, text, response.headers.get("Retry-After"));
      // A 401 for a key replaced since the request was sent says nothing about the new one.
      if (response.status === 401 && key === state.apiKey) askForKey();
      throw error;
    }
    return data;
  }

  // ---- Messages -----------------------------------------------------------

  function showMessage(text, kind = "error") {
    el.message.textContent = text;
    el.message.dataset.kind = kind;
    el.message.hidden = false;
  }

  function clearMessage() {
    el.message.hidden = true;
    el.message.textContent = "";
  }

  function askForKey() {
    showMessage("The server needs an API key: enter it in the API key field and press Save.");
    setConnection("key needed", "error");
  }

  function describeError(error) {
    if (!(error instanceof APIError)) return `Network error: ${error.message}`;
    let text = `${error.status}: ${error.message}`;
    if (error.retryAfter) text += ` (retry in ${error.retryAfter} s)`;
    return text;
  }

  // ---- Formatting ---------------------------------------------------------

  function formatMs(ms) {
    if (typeof ms !== "number" || !Number.isFinite(ms)) return "–";
    if (ms >= 10000) return `${(ms / 1000).toFixed(1)} s`;
    if (ms >= 1000) return `${(ms / 1000).toFixed(2)} s`;
    return `${ms < 10 ? ms.toFixed(1) : Math.round(ms)} ms`;
  }

  function formatScore(score) {
    return `${(score * 100).toFixed(1)} %`;
  }

  function difference(later, earlier) {
    return typeof later === "number" && typeof earlier === "number" ? later - earlier : undefined;
  }

  function modelText(job) {
    if (!job.model) return "";
    return job.version != null ? `${job.model} v${job.version}` : job.model;
  }

  function make(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // ---- Job state ----------------------------------------------------------

  const statusRank = (status) => (TERMINAL.has(status) ? 2 : status === "running" ? 1 : 0);

  // Events and long polls race each other, so an update never moves a job back
  // to an earlier state; fields absent from an update keep their known value.
  function mergeJob(known, update) {
    if (!known) return { ...update };
    if (update.status && statusRank(update.status) < statusRank(known.status)) return known;
    return {
      ...known,
      ...update,
      timings: { ...(known.timings || {}), ...(update.timings || {}) },
    };
  }

  function applyJobUpdate(job) {
    if (!job || !job.job_id) return;
    if (state.current && state.current.job_id === job.job_id) {
      state.current = mergeJob(state.current, job);
      renderCurrentJob();
    }
    upsertRow(job);
  }

  // ---- Current job --------------------------------------------------------

  function setCurrentJob(jobId) {
    state.current = mergeJob(state.jobs.get(jobId), { job_id: jobId, status: "queued" });
    renderCurrentJob();
    // Shows the row at once, without waiting for the job's first event.
    upsertRow(state.current);
    pollCurrentJob(jobId);
  }

  // Long-polls the job until it ends, so the result shows even when events are dropped.
  async function pollCurrentJob(jobId) {
    if (state.pollAbort) state.pollAbort.abort();
    const controller = new AbortController();
    state.pollAbort = controller;
    let failures = 0;
    while (!controller.signal.aborted && state.current && state.current.job_id === jobId && !TERMINAL.has(state.current.status)) {
      try {
        const data = await api(`/job/${encodeURIComponent(jobId)}?wait=30`, { signal: controller.signal });
        const job = data && data[jobId];
        if (job) applyJobUpdate({ job_id: jobId, ...job });
        failures = 0;
        // Paces the loop should the server answer before its wait is up.
        if (!TERMINAL.has(state.current?.status)) await sleep(500);
      } catch (error) {
        if (controller.signal.aborted) return;
        if (error instanceof APIError && error.status === 404) {
          showMessage(`Job ${jobId} is no longer known to the server.`);
          return;
        }
        if (error instanceof APIError && error.status === 401) return;
        failures += 1;
        await sleep(Math.min(15000, 1000 * 2 ** failures));
      }
    }
  }

  function renderCurrentJob() {
    const job = state.current;
    el.currentJob.hidden = !job;
    if (!job) return;
    el.currentJobId.textContent = job.job_id;
    el.currentJobModel.textContent = modelText(job);
    el.currentJobStatus.textContent = job.status || "";
    el.currentJobStatus.dataset.status = job.status || "";

    const failed = TERMINAL.has(job.status) && job.status !== "succeeded";
    let note = failed ? job.error || `The job was ${job.status}.` : "";
    if (job.deleted) note = `${note} The job has been deleted from the server.`.trim();
    el.currentJobError.hidden = !note;
    el.currentJobError.textContent = note;

    renderTop5(job.status === "succeeded" ? job.top || [] : []);
    renderTimings(job);
  }

  function renderTop5(top) {
    const rows = [...top].sort((a, b) => b.score - a.score).slice(0, 5).map((entry) => {
      const row = make("li", "prediction-row");
      const label = make("span", "label", entry.label);
      const bar = make("span", "bar");
      const fill = make("span", "fill");
      fill.style.width = `${Math.max(0, Math.min(1, entry.score)) * 100}%`;
      bar.append(fill);
      row.append(label, bar, make("span", "score", formatScore(entry.score)));
      row.title = `class ${entry.index}`;
      return row;
    });
    el.top5.replaceChildren(...rows);
  }

  function renderTimings(job) {
    const t = job.timings || {};
    const entries = [
      ["Queue wait", difference(t.started_at, t.queued_at)],
      ["Inference", t.inference_ms],
      ["Total", difference(t.finished_at, t.queued_at)],
      ["Worker", job.worker],
    ];
    const nodes = [];
    for (const [name, value] of entries) {
      if (value === undefined || value === "" || value === null) continue;
      const wrap = make("div");
      wrap.append(make("dt", "", name), make("dd", "", typeof value === "number" ? formatMs(value) : value));
      nodes.push(wrap);
    }
    el.timings.replaceChildren(...nodes);
  }

  // ---- Submitting ---------------------------------------------------------

  function isJPEG(file) {
    return file.type === "image/jpeg" || /\.jpe?g$/i.test(file.name);
  }

  function readAsBase64(file) {
    return new Promise((resolve, reject) => {
      const reader = new FileReader();
      reader.onload = () => resolve(String(reader.result).replace(/^data:[^,]*,/, ""));
      reader.onerror = () => reject(reader.error);
      reader.readAsDataURL(file);
    });
  }

  function showPreview(file) {
    if (state.previewURL) URL.revokeObjectURL(state.previewURL);
    state.previewURL = URL.createObjectURL(file);
    el.preview.src = state.previewURL;
    el.preview.alt = `Preview of ${file.name}`;
    el.preview.hidden = false;
    el.dropZone.classList.add("has-preview");
  }

  async function submitFile(file) {
    if (!file) return;
    if (!isJPEG(file)) {
      showMessage(`${file.name} is not a JPEG image.`);
      return;
    }
    clearMessage();
    showPreview(file);
    el.dropZone.setAttribute("aria-busy", "true");
    try {
      const imageData = await readAsBase64(file);
      const data = await api("/predict", { method: "POST", body: { image_data: imageData, top_k: 5 } });
      setCurrentJob(data.job_id);
    } catch (error) {
      showMessage(describeError(error));
    } finally {
      el.dropZone.removeAttribute("aria-busy");
    }
  }

  function setUpSubmit() {
    el.fileInput.addEventListener("change", () => {
      const file = el.fileInput.files[0];
      submitFile(file);
      // Lets the same file be chosen again for another run.
      el.fileInput.value = "";
    });
    el.dropZone.addEventListener("dragover", (event) => {
      event.preventDefault();
      event.dataTransfer.dropEffect = "copy";
      el.dropZone.classList.add("dragging");
    });
    el.dropZone.addEventListener("dragleave", () => el.dropZone.classList.remove("dragging"));
    el.dropZone.addEventListener("drop", (event) => {
      event.preventDefault();
      el.dropZone.classList.remove("dragging");
      submitFile(event.dataTransfer.files[0]);
    });
  }

  // ---- Jobs table ---------------------------------------------------------

  function findRow(jobId) {
    return el.jobsBody.querySelector(`tr[data-job-id="${CSS.escape(jobId)}"]`);
  }

  function buildRow(jobId) {
    const row = make("tr");
    row.dataset.jobId = jobId;
    const id = make("td", "job-id");
    id.append(make("code", "", jobId.length > 12 ? `${jobId.slice(0, 8)}…` : jobId));
    id.title = jobId;
    const action = make("td", "action");
    const button = make("button", "delete");
    button.type = "button";
    button.addEventListener("click", () => deleteJob(jobId, button));
    action.append(button);
    row.append(id, make("td", "status"), make("td", "model"), make("td", "prediction"),
      make("td", "latency num"), make("td", "worker"), action);
    return row;
  }

  function fillRow(row, job) {
    const cell = (name) => row.querySelector(`td.${name}`);
    const status = cell("status");
    status.textContent = job.status || "";
    status.dataset.status = job.status || "";
    cell("model").textContent = modelText(job);
    cell("prediction").textContent = job.prediction || (job.status === "failed" && job.error) || "";
    cell("prediction").title = job.error || "";
    const t = job.timings || {};
    cell("latency").textContent = TERMINAL.has(job.status) ? formatMs(difference(t.finished_at, t.queued_at)) : "";
    cell("worker").textContent = job.worker || "";
    const button = cell("action").querySelector("button.delete");
    const active = !TERMINAL.has(job.status);
    button.textContent = active ? "Cancel" : "Delete";
    button.setAttribute("aria-label", `${active ? "Cancel" : "Delete"} job ${job.job_id}`);
  }

  // Updates a job's row in place, or adds it: at the top for live updates, at the bottom when paging.
  function upsertRow(update, { append = false } = {}) {
    if (state.removed.has(update.job_id)) return;
    const job = mergeJob(state.jobs.get(update.job_id), update);
    state.jobs.set(job.job_id, job);
    let row = findRow(job.job_id);
    if (!row) {
      row = buildRow(job.job_id);
      if (append) el.jobsBody.append(row);
      else el.jobsBody.prepend(row);
    }
    fillRow(row, job);
    trimRows();
  }

  function trimRows() {
    while (el.jobsBody.rows.length > state.rowLimit) {
      const last = el.jobsBody.lastElementChild;
      state.jobs.delete(last.dataset.jobId);
      last.remove();
    }
  }

  function removeRow(jobId) {
    state.removed.add(jobId);
    if (state.current && state.current.job_id === jobId) {
      state.current = { ...state.current, deleted: true };
      renderCurrentJob();
    }
    state.jobs.delete(jobId);
    const row = findRow(jobId);
    if (row) row.remove();
  }

  async function loadJobs({ more = false } = {}) {
    const query = new URLSearchParams({ limit: String(PAGE_SIZE) });
    if (more && state.next) query.set("before", state.next);
    try {
      const data = await api(`/jobs?${query}`);
      if (!more) {
        el.jobsBody.replaceChildren();
        state.rowLimit = PAGE_SIZE;
      } else {
        state.rowLimit += PAGE_SIZE;
      }
      // Known states stay merged in, since an event may be newer than this page.
      for (const job of data.jobs || []) upsertRow(job, { append: true });
      for (const id of state.jobs.keys()) if (!findRow(id)) state.jobs.delete(id);
      state.next = data.next || null;
      el.loadMore.hidden = !state.next;
    } catch (error) {
      if (!(error instanceof APIError && error.status === 401)) showMessage(`Could not load jobs: ${describeError(error)}`);
    }
  }

  async function deleteJob(jobId, button) {
    button.disabled = true;
    try {
      const data = await api(`/job/${encodeURIComponent(jobId)}`, { method: "DELETE" });
      if (data.status === "cancelled") {
        applyJobUpdate({ job_id: jobId, status: "cancelled" });
      } else {
        removeRow(jobId);
      }
    } catch (error) {
      if (error instanceof APIError && error.status === 404) {
        removeRow(jobId);
      } else {
        showMessage(`Could not delete job ${jobId}: ${describeError(error)}`);
      }
    } finally {
      button.disabled = false;
    }
  }

  // ---- Summary, workers and models ---------------------------------------

  function renderSummary(summary) {
    const latency = summary.latency_ms || {};
    const values = {
      jobs_per_second: typeof summary.jobs_per_second === "number" ? summary.jobs_per_second.toFixed(2) : "–",
      queued: summary.queued ?? "–",
      running: summary.running ?? "–",
      p50: formatMs(latency.p50),
      p99: formatMs(latency.p99),
    };
    for (const dd of el.summary.querySelectorAll("dd[data-field]")) {
      dd.textContent = String(values[dd.dataset.field]);
    }
    renderList(el.workers, summary.workers || [], (worker) => {
      const item = make("li");
      item.append(make("span", "name", worker.worker), make("span", "muted", worker.model),
        make("span", "counts", `${worker.queued} queued · ${worker.running} running`));
      return item;
    });
    const versions = [];
    for (const model of summary.models || []) {
      for (const version of model.versions || []) versions.push({ name: model.name, ...version });
      if (!model.versions || model.versions.length === 0) versions.push({ name: model.name });
    }
    renderList(el.models, versions, (entry) => {
      const item = make("li");
      const label = entry.version != null ? `${entry.name} v${entry.version}` : entry.name;
      const badge = make("span", "badge", entry.state || "unknown");
      badge.dataset.state = entry.state || "";
      item.append(make("span", "name", label), document.createTextNode(" "), badge);
      return item;
    });
    addPoint(summary);
  }

  function renderList(list, items, render) {
    const nodes = items.map(render);
    if (nodes.length === 0) nodes.push(make("li", "empty", "none"));
    list.replaceChildren(...nodes);
  }

  // ---- Chart --------------------------------------------------------------

  function addPoint(summary) {
    const at = typeof summary.at === "number" ? summary.at : Date.now();
    state.points.push({ at, rate: summary.jobs_per_second || 0, queued: summary.queued || 0 });
    const oldest = at - CHART_WINDOW_MS;
    while (state.points.length && state.points[0].at < oldest) state.points.shift();
    drawChart();
  }

  // A tick step of 1, 2, 2.5 or 5 times a power of ten, so that `ticks` steps reach value;
  // whole steps only for counts such as the queue depth.
  function niceStep(value, ticks, whole) {
    const raw = Math.max(value / ticks, whole ? 1 : 0.05);
    const power = 10 ** Math.floor(Math.log10(raw));
    const multiples = whole && power === 1 ? [1, 2, 5, 10] : [1, 2, 2.5, 5, 10];
    for (const m of multiples) if (m * power >= raw) return m * power;
    return 10 * power;
  }

  function chartColors() {
    const style = getComputedStyle(el.chart);
    const read = (name, fallback) => style.getPropertyValue(name).trim() || fallback;
    return {
      text: read("--chart-text", "#555"),
      grid: read("--chart-grid", "#ddd"),
      rate: read("--chart-rate", "#2563eb"),
      queued: read("--chart-queued", "#d97706"),
    };
  }

  function drawChart() {
    const canvas = el.chart;
    const width = canvas.clientWidth;
    const height = canvas.clientHeight;
    if (!width || !height) return;
    const ratio = window.devicePixelRatio || 1;
    if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
      canvas.width = Math.round(width * ratio);
      canvas.height = Math.round(height * ratio);
    }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, height);

    const colors = chartColors();
    const pad = { left: 40, right: 40, top: 28, bottom: 26 };
    const plotW = Math.max(10, width - pad.left - pad.right);
    const plotH = Math.max(10, height - pad.top - pad.bottom);
    const points = state.points;
    const now = points.length ? points[points.length - 1].at : Date.now();
    const start = now - CHART_WINDOW_MS;
    const ticks = 4;
    const rateMax = ticks * niceStep(Math.max(0, ...points.map((p) => p.rate)), ticks, false);
    const queuedMax = ticks * niceStep(Math.max(0, ...points.map((p) => p.queued)), ticks, true);
    const x = (at) => pad.left + ((at - start) / CHART_WINDOW_MS) * plotW;
    const y = (value, max) => pad.top + plotH - (value / max) * plotH;

    ctx.font = "11px system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif";
    ctx.lineWidth = 1;

    // Grid and the two y axes: jobs/s on the left, queue depth on the right.
    for (let i = 0; i <= ticks; i += 1) {
      const gy = pad.top + (plotH * i) / ticks;
      ctx.strokeStyle = colors.grid;
      ctx.beginPath();
      ctx.moveTo(pad.left, Math.round(gy) + 0.5);
      ctx.lineTo(pad.left + plotW, Math.round(gy) + 0.5);
      ctx.stroke();
      const fraction = 1 - i / ticks;
      ctx.fillStyle = colors.rate;
      ctx.textAlign = "right";
      ctx.textBaseline = "middle";
      ctx.fillText(trimNumber(rateMax * fraction), pad.left - 6, gy);
      ctx.fillStyle = colors.queued;
      ctx.textAlign = "left";
      ctx.fillText(trimNumber(queuedMax * fraction), pad.left + plotW + 6, gy);
    }

    // Time axis, one label a minute.
    ctx.fillStyle = colors.text;
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    for (let minute = 5; minute >= 0; minute -= 1) {
      const label = minute === 0 ? "now" : `−${minute} min`;
      ctx.fillText(label, x(now - minute * 60000), pad.top + plotH + 6);
    }

    drawLine(ctx, points, (p) => x(p.at), (p) => y(p.rate, rateMax), colors.rate);
    drawLine(ctx, points, (p) => x(p.at), (p) => y(p.queued, queuedMax), colors.queued);
    drawLegend(ctx, pad.left, 8, [["jobs/s (left)", colors.rate], ["queued (right)", colors.queued]], colors.text);

    if (points.length === 0) {
      ctx.fillStyle = colors.text;
      ctx.textAlign = "center";
      ctx.textBaseline = "middle";
      ctx.fillText("waiting for data", pad.left + plotW / 2, pad.top + plotH / 2);
    }
  }

  function trimNumber(value) {
    return String(Number(value.toFixed(2)));
  }

  // Draws a series, leaving a gap where summaries are missing (the stream was down).
  function drawLine(ctx, points, px, py, color) {
    if (points.length === 0) return;
    ctx.strokeStyle = color;
    ctx.lineWidth = 2;
    ctx.lineJoin = "round";
    ctx.beginPath();
    points.forEach((p, i) => {
      const gap = i === 0 || p.at - points[i - 1].at > CHART_GAP_MS;
      if (gap) ctx.moveTo(px(p), py(p));
      else ctx.lineTo(px(p), py(p));
    });
    ctx.stroke();
    ctx.lineWidth = 1;
  }

  function drawLegend(ctx, left, top, entries, textColor) {
    let cursor = left;
    ctx.textAlign = "left";
    ctx.textBaseline = "middle";
    for (const [label, color] of entries) {
      ctx.fillStyle = color;
      ctx.fillRect(cursor, top + 3, 14, 4);
      ctx.fillStyle = textColor;
      ctx.fillText(label, cursor + 19, top + 5);
      cursor += 19 + ctx.measureText(label).width + 16;
    }
  }

  // ---- Event stream -------------------------------------------------------

  function setConnection(text, kind) {
    el.connection.textContent = text;
    el.connection.dataset.state = kind;
  }

  // Parses Server-Sent Events incrementally; calls onMessage(type, data) per message.
  class SSEParser {
    constructor(onMessage) {
      this.onMessage = onMessage;
      this.buffer = "";
      this.reset();
    }

    reset() {
      this.type = "";
      this.data = [];
    }

    push(text) {
      this.buffer += text;
      for (;;) {
        const match = /\r\n|\r|\n/.exec(this.buffer);
        if (!match) break;
        // A lone CR at the end may be the first half of a CRLF still in transit.
        if (match[0] === "\r" && match.index === this.buffer.length - 1) break;
        const line = this.buffer.slice(0, match.index);
        this.buffer = this.buffer.slice(match.index + match[0].length);
        this.line(line);
      }
    }

    line(line) {
      if (line === "") {
        if (this.data.length) this.onMessage(this.type || "message", this.data.join("\n"));
        this.reset();
        return;
      }
      if (line.startsWith(":")) return;
      const colon = line.indexOf(":");
      const field = colon === -1 ? line : line.slice(0, colon);
      let value = colon === -1 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "event") this.type = value;
      else if (field === "data") this.data.push(value);
    }
  }

  const stream = { controller: null, attempt: 0, connectedOnce: false, wake: null };

  function handleEvent(type, data) {
    let payload;
    try {
      payload = JSON.parse(data);
    } catch {
      return;
    }
    if (type === "summary") {
      renderSummary(payload);
    } else if (type === "jobs") {
      for (const job of payload.jobs || []) applyJobUpdate(job);
      // Under load the feed leaves changes out; re-read the table, but at most every 10 s,
      // so a thousand open pages do not turn a busy minute into a flood of store queries.
      if (payload.dropped > 0 && Date.now() - state.droppedReloadAt > 10000) {
        state.droppedReloadAt = Date.now();
        loadJobs();
      }
    }
  }

  // Reads /events once until it ends, fails or stalls.
  async function readStream() {
    const controller = new AbortController();
    stream.controller = controller;
    let stall = null;
    const arm = () => {
      clearTimeout(stall);
      stall = setTimeout(() => controller.abort(), STREAM_STALL_MS);
    };
    arm();
    const key = state.apiKey;
    try {
      const response = await fetch("/events", {
        headers: authHeaders({ Accept: "text/event-stream" }),
        cache: "no-store",
        signal: controller.signal,
      });
      if (response.status === 401) {
        if (key === state.apiKey) askForKey();
        return "unauthorized";
      }
      if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`);
      setConnection("live", "live");
      stream.attempt = 0;
      // Events may have been missed while the stream was down.
      if (stream.connectedOnce) loadJobs();
      stream.connectedOnce = true;
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      const parser = new SSEParser(handleEvent);
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        arm();
        parser.push(value);
      }
      return "ended";
    } catch {
      return "failed";
    } finally {
      clearTimeout(stall);
      controller.abort();
    }
  }

  async function runStream() {
    for (;;) {
      const outcome = await readStream();
      if (outcome !== "unauthorized") setConnection("reconnecting", "reconnecting");
      stream.attempt += 1;
      const base = outcome === "unauthorized" ? 30000 : Math.min(15000, 500 * 2 ** stream.attempt);
      await new Promise((resolve) => {
        stream.wake = resolve;
        setTimeout(resolve, base * (0.8 + Math.random() * 0.4));
      });
      stream.wake = null;
    }
  }

  // Drops the current connection (or the wait before the next one) and connects again now.
  function reconnectNow() {
    stream.attempt = 0;
    if (stream.wake) stream.wake();
    else if (stream.controller) stream.controller.abort();
    setConnection("connecting", "connecting");
  }

  // ---- Start --------------------------------------------------------------

  function sleep(ms) {
    return new Promise((resolve) => setTimeout(resolve, ms));
  }

  function setUpKey() {
    el.keyInput.value = state.apiKey;
    el.keyForm.addEventListener("submit", (event) => {
      event.preventDefault();
      state.apiKey = el.keyInput.value.trim();
      if (state.apiKey) sessionStorage.setItem(KEY_STORAGE, state.apiKey);
      else sessionStorage.removeItem(KEY_STORAGE);
      clearMessage();
      loadJobs();
      reconnectNow();
      if (state.current && !TERMINAL.has(state.current.status)) pollCurrentJob(state.current.job_id);
    });
  }

  function start() {
    setUpKey();
    setUpSubmit();
    el.loadMore.addEventListener("click", () => loadJobs({ more: true }));
    new ResizeObserver(() => drawChart()).observe(el.chart);
    window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", drawChart);
    drawChart();
    loadJobs();
    runStream();
  }

  start();
})();
