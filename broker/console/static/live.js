// Live charts of the console's overview: polls /api/stats (running totals) every
// data-interval ms, turns totals into per-second rates, and draws the last 60 points of
// bytes in/out, records in and under-replicated partitions as SVG lines; per-topic rates
// go into table#topic-rates. No library, no build step.
(function () {
  const root = document.getElementById("live");
  if (!root) return;
  const interval = Number(root.dataset.interval || 2000);
  const keep = 60;
  const series = { bytes_in: [], bytes_out: [], messages_in: [], under_replicated: [] };
  let previous = null;

  const sum = (m) => Object.values(m).reduce((a, b) => a + b, 0);
  const human = (n, unit) => {
    const units = ["", "Ki", "Mi", "Gi"];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i ? n.toFixed(1) : Math.round(n)) + " " + units[i] + unit;
  };

  function draw(name) {
    const svg = root.querySelector(`svg[data-series="${name}"]`);
    const points = series[name];
    if (!svg || points.length === 0) return;
    const max = Math.max(1, ...points);
    const w = 300, h = 60;
    // the line spans the chart from the first point on (until `keep` points scroll)
    const drawn = points.length === 1 ? [points[0], points[0]] : points;
    const step = w / (drawn.length - 1);
    const coords = drawn.map((v, i) =>
      `${(i * step).toFixed(1)},${(h - (v / max) * (h - 4) - 2).toFixed(1)}`);
    svg.querySelector("polyline").setAttribute("points", coords.join(" "));
    svg.dataset.last = String(points[points.length - 1]);
  }

  function show(id, text) {
    const el = document.getElementById(id);
    if (el) el.textContent = text;
  }

  function topicRates(now, dt) {
    const body = document.querySelector("#topic-rates tbody");
    if (!body) return;
    const topics = Object.keys(now.bytes_in).concat(Object.keys(now.bytes_out))
      .filter((t, i, all) => all.indexOf(t) === i).sort();
    const rate = (field, t) =>
      Math.max(0, ((now[field][t] || 0) - (previous[field][t] || 0)) / dt);
    body.replaceChildren(...topics.map((t) => {
      const tr = document.createElement("tr");
      const cells = [["topic", t], ["bytes_in", human(rate("bytes_in", t), "B/s")],
                     ["messages_in", rate("messages_in", t).toFixed(1) + " /s"],
                     ["bytes_out", human(rate("bytes_out", t), "B/s")]];
      for (const [col, text] of cells) {
        const td = document.createElement("td");
        td.dataset.col = col;
        td.textContent = text;
        tr.appendChild(td);
      }
      return tr;
    }));
  }

  async function poll() {
    try {
      const response = await fetch("/api/stats", { cache: "no-store" });
      const now = await response.json();
      if (previous) {
        const dt = Math.max(0.001, (now.time_ms - previous.time_ms) / 1000);
        for (const field of ["bytes_in", "bytes_out", "messages_in"]) {
          series[field].push(Math.max(0, (sum(now[field]) - sum(previous[field])) / dt));
        }
        series.under_replicated.push(now.under_replicated);
        for (const name of Object.keys(series)) {
          if (series[name].length > keep) series[name].shift();
          draw(name);
        }
        show("rate-bytes_in", human(series.bytes_in.at(-1), "B/s"));
        show("rate-bytes_out", human(series.bytes_out.at(-1), "B/s"));
        show("rate-messages_in", series.messages_in.at(-1).toFixed(1) + " /s");
        show("rate-under_replicated", String(now.under_replicated));
        topicRates(now, dt);
      }
      previous = now;
      root.dataset.polls = String(Number(root.dataset.polls || 0) + 1);
    } catch (err) {
      show("live-error", "stats unavailable: " + err);
    }
    setTimeout(poll, interval);
  }
  poll();
})();
