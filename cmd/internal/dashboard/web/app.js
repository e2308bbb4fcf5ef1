// taxi-stream dashboard: final hourly results per borough (from the results topic,
// pushed by the server as Server-Sent Events), open windows (provisional) and health
// (from the processor's query API). Times are New York wall clock: the processor's
// epoch milliseconds are that wall clock read as UTC, so everything is shown in UTC.
'use strict';
(() => {
  const HOUR = 3600e3;

  // Metrics of a result (the field names of the results topic's JSON).
  const METRICS = [
    { id: 'trip_count', name: 'trips', label: 'Trips', axis: 'Trips per hour', fmt: 'int', zero: true },
    { id: 'avg_passenger_count', name: 'average passengers', label: 'Average passengers', axis: 'Passengers per trip (average)', fmt: 'dec' },
    { id: 'total_distance', name: 'total distance', label: 'Total distance', axis: 'Distance per hour (miles)', fmt: 'mi', zero: true },
    { id: 'avg_distance', name: 'average distance', label: 'Average distance', axis: 'Distance per trip (miles)', fmt: 'mi' },
    { id: 'avg_tip_amount', name: 'average tip', label: 'Average tip', axis: 'Tip per trip (USD)', fmt: 'usd' },
    { id: 'total_fare', name: 'total fare', label: 'Total fare', axis: 'Fares per hour (USD)', fmt: 'usd', zero: true },
    { id: 'avg_fare', name: 'average fare', label: 'Average fare', axis: 'Fare per trip (USD)', fmt: 'usd' },
    { id: 'total_amount', name: 'total amount', label: 'Total amount', axis: 'Amount charged per hour (USD)', fmt: 'usd', zero: true },
    { id: 'avg_total_amount', name: 'average amount', label: 'Average amount', axis: 'Amount per trip (USD)', fmt: 'usd' },
  ];
  const metricByID = new Map(METRICS.map((m) => [m.id, m]));

  // Okabe-Ito: distinguishable with every common colour-vision deficiency.
  const COLORS = {
    Manhattan: '#0072B2', Brooklyn: '#E69F00', Queens: '#009E73', Bronx: '#D55E00',
    'Staten Island': '#CC79A7', EWR: '#56B4E9', Unknown: '#000000', 'N/A': '#999999',
  };
  const EXTRA_COLORS = ['#F0E442', '#7f6000', '#004c73', '#8c3b00'];
  const ORDER = Object.keys(COLORS);
  const colorOf = (b) => COLORS[b] || EXTRA_COLORS[Math.abs(hash(b)) % EXTRA_COLORS.length];
  function hash(s) { let h = 0; for (const c of s) h = (h * 31 + c.codePointAt(0)) | 0; return h; }
  function boroughOrder(a, b) {
    const ia = ORDER.indexOf(a), ib = ORDER.indexOf(b);
    if (ia >= 0 && ib >= 0) return ia - ib;
    if (ia >= 0) return -1;
    if (ib >= 0) return 1;
    return a < b ? -1 : a > b ? 1 : 0;
  }

  const state = {
    finals: new Map(), // results topic key -> result
    status: null,
    metric: 'trip_count',
    range: '744', // hours: the last 31 days
    hidden: new Set(), // boroughs hidden through the legend
    connects: 0,
    connected: false,
    synced: false,
    topic: null,
    lastEvent: 0,
  };

  // ---------- formatting ----------
  const nfInt = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
  const nf2 = new Intl.NumberFormat('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  function fmtValue(m, v) {
    if (v === null || v === undefined) return '—';
    switch (m.fmt) {
      case 'int': return nfInt.format(v);
      case 'usd': return (v < 0 ? '−$' : '$') + nf2.format(Math.abs(v));
      case 'mi': return nf2.format(v) + ' mi';
      default: return nf2.format(v);
    }
  }
  const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
  const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  const pad = (n) => String(n).padStart(2, '0');
  const MAX_DATE_MS = 8.64e15;
  function fmtWallShort(ms) {
    if (ms === null || ms === undefined) return '—';
    if (Math.abs(ms) >= MAX_DATE_MS) return ms > 0 ? 'end of input' : '—';
    const d = new Date(ms);
    return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`;
  }
  function fmtWall(ms, withYear) {
    if (ms === null || ms === undefined) return '—';
    if (Math.abs(ms) >= MAX_DATE_MS) return ms > 0 ? 'end of input' : '—';
    const d = new Date(ms);
    const s = `${DAYS[d.getUTCDay()]} ${MONTHS[d.getUTCMonth()]} ${d.getUTCDate()} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`;
    return withYear ? `${s} ${d.getUTCFullYear()}` : s;
  }
  function fmtDuration(ms) {
    if (ms === null || ms === undefined) return '—';
    if (Math.abs(ms) >= MAX_DATE_MS) return '—';
    const neg = ms < 0; let s = Math.round(Math.abs(ms) / 1000);
    const d = Math.floor(s / 86400); s -= d * 86400;
    const h = Math.floor(s / 3600); s -= h * 3600;
    const m = Math.floor(s / 60); s -= m * 60;
    let out;
    if (d > 0) out = `${d} d ${h} h`;
    else if (h > 0) out = `${h} h ${m} min`;
    else if (m > 0) out = `${m} min ${s} s`;
    else out = `${s} s`;
    return (neg ? '−' : '') + out;
  }
  const $ = (id) => document.getElementById(id);

  // ---------- chart data ----------
  // build returns what the chart plots for a metric: x = hour starts (final and open),
  // final[b] = the final results (0 in closed hours without rides for count and total
  // metrics), prov[b] = the open windows' running values, provLine[b] = prov[b] joined
  // to the borough's last final point (what the dashed line draws).
  function build(metricID) {
    const m = metricByID.get(metricID);
    const closed = new Set();
    const boroughs = new Set();
    const finalCell = new Map(); // start|borough -> value
    for (const r of state.finals.values()) {
      closed.add(r.window.start_ms);
      boroughs.add(r.borough);
      finalCell.set(r.window.start_ms + '|' + r.borough, r[m.id]);
    }
    const open = [];
    for (const w of openWindows()) {
      if (finalCell.has(w.window.start_ms + '|' + w.borough)) continue; // the final result arrived first
      open.push(w);
      boroughs.add(w.borough);
    }
    const xs = new Set(closed);
    for (const w of open) xs.add(w.window.start_ms);
    const x = Array.from(xs).sort((a, b) => a - b);
    const at = new Map(x.map((v, i) => [v, i]));
    const bs = Array.from(boroughs).sort(boroughOrder);
    const final = {}, prov = {}, provLine = {};
    for (const b of bs) {
      const f = new Array(x.length).fill(null);
      if (m.zero) for (const s of closed) f[at.get(s)] = 0;
      final[b] = f;
      prov[b] = new Array(x.length).fill(null);
    }
    for (const [k, v] of finalCell) {
      const i = k.indexOf('|');
      final[k.slice(i + 1)][at.get(Number(k.slice(0, i)))] = v === undefined ? null : v;
    }
    for (const w of open) {
      const v = w[m.id];
      prov[w.borough][at.get(w.window.start_ms)] = v === undefined ? null : v;
    }
    let openFrom = null, openTo = null;
    for (const w of open) {
      openFrom = openFrom === null ? w.window.start_ms : Math.min(openFrom, w.window.start_ms);
      openTo = openTo === null ? w.window.start_ms : Math.max(openTo, w.window.start_ms);
    }
    // The dashed line: for counts and totals an open hour without a cell for a
    // borough has 0 so far; it starts at the borough's final value just before.
    const openIdx = Array.from(new Set(open.map((w) => at.get(w.window.start_ms)))).sort((a, b) => a - b);
    for (const b of bs) {
      const line = prov[b].slice();
      if (m.zero) for (const i of openIdx) if (line[i] === null && final[b][i] === null) line[i] = 0;
      const first = line.findIndex((v) => v !== null);
      if (first > 0 && final[b][first - 1] !== null) line[first - 1] = final[b][first - 1];
      provLine[b] = line;
    }
    return { metric: m, x, boroughs: bs, final, prov, provLine, openFrom, openTo };
  }

  function openWindows() {
    const st = state.status;
    return (st && Array.isArray(st.open_windows)) ? st.open_windows : [];
  }

  // ---------- chart ----------
  let plot = null;
  let plotSig = '';
  let built = null;

  function axisSize(self, values, axisIdx, cycleNum) {
    const axis = self.axes[axisIdx];
    if (cycleNum > 1) return axis._size;
    let size = axis.ticks.size + axis.gap;
    const longest = (values || []).reduce((acc, v) => (v && v.length > acc.length ? v : acc), '');
    if (longest !== '') {
      self.ctx.font = axis.font[0];
      size += self.ctx.measureText(longest).width / devicePixelRatio;
    }
    return Math.ceil(size) + 4;
  }

  function drawOpenBand(u) {
    if (!built || built.openFrom === null) return;
    const { ctx, bbox } = u;
    let x0 = u.valToPos(built.openFrom - HOUR / 2, 'x', true);
    let x1 = u.valToPos(built.openTo + HOUR / 2, 'x', true);
    x0 = Math.max(x0, bbox.left); x1 = Math.min(x1, bbox.left + bbox.width);
    if (x1 <= x0) return;
    ctx.save();
    ctx.fillStyle = 'rgba(230, 159, 0, 0.13)';
    ctx.fillRect(x0, bbox.top, x1 - x0, bbox.height);
    ctx.setLineDash([4 * devicePixelRatio, 3 * devicePixelRatio]);
    ctx.strokeStyle = '#E69F00';
    ctx.lineWidth = devicePixelRatio;
    ctx.beginPath(); ctx.moveTo(x0, bbox.top); ctx.lineTo(x0, bbox.top + bbox.height); ctx.stroke();
    ctx.fillStyle = '#7a4b00';
    ctx.font = `${600} ${12 * devicePixelRatio}px system-ui, sans-serif`;
    ctx.textAlign = 'right';
    ctx.fillText('open · provisional', x0 - 4 * devicePixelRatio, bbox.top + 14 * devicePixelRatio);
    ctx.restore();
  }

  function plotData(b) {
    const data = [b.x];
    for (const name of b.boroughs) data.push(b.final[name]);
    for (const name of b.boroughs) data.push(b.provLine[name]);
    return data;
  }

  function makePlot(b) {
    const m = b.metric;
    const n = b.boroughs.length;
    const el = $('chart');
    const series = [{ label: 'Hour (NYC)', value: (u, v) => (v == null ? '—' : fmtWall(v, true)) }];
    for (const name of b.boroughs) {
      series.push({
        label: name, stroke: colorOf(name), width: 2, spanGaps: false,
        show: !state.hidden.has(name),
        value: (u, v) => fmtValue(m, v),
        points: { size: 5, space: 10 },
      });
    }
    for (const name of b.boroughs) {
      series.push({
        label: name + ' (open, provisional)', stroke: colorOf(name), width: 2, dash: [6, 4], spanGaps: false,
        show: !state.hidden.has(name),
        value: (u, v) => fmtValue(m, v),
        points: {
          show: true, size: 9, width: 2.5, fill: '#ffffff', stroke: colorOf(name),
          // only the open windows get a marker, not the final point the dash starts from
          filter: (u, si) => {
            const p = built.prov[b.boroughs[si - 1 - n]] || [];
            const idx = [];
            p.forEach((v, i) => { if (v !== null) idx.push(i); });
            return idx;
          },
        },
      });
    }
    const opts = {
      width: Math.max(320, el.clientWidth),
      height: 380,
      ms: 1,
      tzDate: (ts) => uPlot.tzDate(new Date(ts), 'Etc/UTC'),
      cursor: { drag: { x: false, y: false }, focus: { prox: 16 } },
      focus: { alpha: 0.35 },
      legend: { live: true },
      scales: {
        x: { time: true },
        y: { range: (u, min, max) => uPlot.rangeNum(Math.min(0, min ?? 0), max ?? 1, 0.1, true) },
      },
      axes: [
        { label: 'Hour starting (New York local time)', labelSize: 22, labelFont: '600 13px system-ui, sans-serif', font: '12px system-ui, sans-serif', stroke: '#333', grid: { stroke: '#eceef1' }, ticks: { stroke: '#c9ced4' } },
        { label: m.axis, labelSize: 24, labelFont: '600 13px system-ui, sans-serif', font: '12px system-ui, sans-serif', stroke: '#333', size: axisSize, grid: { stroke: '#eceef1' }, ticks: { stroke: '#c9ced4' },
          values: (u, splits) => splits.map((v) => (m.fmt === 'usd' ? '$' + nfInt.format(v) : m.fmt === 'int' ? nfInt.format(v) : String(+v.toFixed(2)))) },
      ],
      series,
      hooks: {
        drawAxes: [drawOpenBand],
        ready: [(u) => {
          u.root.querySelectorAll('.u-legend .u-series').forEach((row, i) => {
            if (i > n) row.classList.add('prov-series');
          });
        }],
        setSeries: [(u, si, o) => {
          if (si === null || si < 1 || si > n || o.show === undefined) return;
          const name = b.boroughs[si - 1];
          if (o.show) state.hidden.delete(name); else state.hidden.add(name);
          if (u.series[si + n].show !== o.show) u.setSeries(si + n, { show: o.show });
        }],
      },
    };
    if (plot) plot.destroy();
    el.textContent = '';
    plot = new uPlot(opts, plotData(b), el);
  }

  // applyRange shows the chosen number of hours up to the stream's frontier: the
  // latest closed hour, plus the open hours just after it. Open windows far ahead
  // (rides with a broken, far-future timestamp) are left to the table, and rides
  // with far-past timestamps to the "all" range, so that they do not squash the chart.
  function applyRange() {
    if (!plot || !built || built.x.length === 0) return;
    if (state.range === 'all') return;
    const hours = Number(state.range);
    let anchor = null;
    for (const r of state.finals.values()) anchor = anchor === null ? r.window.start_ms : Math.max(anchor, r.window.start_ms);
    let max = anchor;
    for (const w of openWindows()) {
      const s = w.window.start_ms;
      if (anchor === null || (s > max && s <= anchor + 48 * HOUR)) max = max === null ? s : Math.max(max, s);
    }
    if (max === null) return;
    let min = max - (hours - 1) * HOUR;
    const first = built.x.find((x) => x >= min); // no empty stretch before the data starts
    if (first !== undefined) min = first;
    plot.setScale('x', { min: min - HOUR / 2, max: max + HOUR / 2 });
  }

  function renderChart() {
    built = build(state.metric);
    $('chart-empty').hidden = built.x.length > 0;
    const sig = state.metric + '|' + built.boroughs.join('|');
    if (!plot || sig !== plotSig) {
      plotSig = sig;
      makePlot(built);
    } else {
      plot.setData(plotData(built));
    }
    applyRange();
  }

  // ---------- panels ----------
  function renderKPIs() {
    const st = state.status;
    const hours = new Set();
    for (const r of state.finals.values()) hours.add(r.window.start_ms);
    $('k-results').textContent = nfInt.format(state.finals.size);
    $('k-results-n').textContent = `in ${nfInt.format(hours.size)} closed hours`;
    const c = st && st.have_query ? st.counters || {} : null;
    const num = (v) => (v === undefined || v === null ? '—' : nfInt.format(v));
    $('k-in').textContent = c ? num(c.rides_in) : '—';
    $('k-counted').textContent = c ? `counted ${num(c.counted)}` : 'no query API';
    $('k-late').textContent = c ? num(c.late) : '—';
    $('k-dead').textContent = c ? num(c.dead) : '—';
    $('k-late').classList.toggle('warn', !!(c && c.late > 0));
    $('k-dead').classList.toggle('warn', !!(c && c.dead > 0));
    $('k-closed').textContent = c ? num(c.windows_closed) : '—';
    // Revisions (taxi-stream --allowed-lateness): a key whose latest record is a
    // revision shows here with its revision number; the chart already plots the
    // latest totals, since state.finals keeps the latest record of each key.
    const revised = Array.from(state.finals.values()).filter((r) => r.revision > 0)
      .sort((a, b) => b.window.start_ms - a.window.start_ms || boroughOrder(a.borough, b.borough));
    $('rev-count').textContent = revised.length ? `${nfInt.format(revised.length)} hour × borough cells revised` : '';
    fillTable('rev-table', revised.slice(0, 200).map((r) => [
      { text: `${fmtWall(r.window.start_ms)}–${pad(new Date(r.window.end_ms).getUTCHours())}:00` },
      { text: r.borough, color: colorOf(r.borough) },
      { text: fmtValue(metricByID.get('trip_count'), r.trip_count), cls: 'num' },
      { text: String(r.revision), cls: 'num' },
    ]), 'rev-empty');

    const wms = (st && st.watermarks) || [];
    let wm = st ? st.watermark_ms : null;
    if ((wm === null || wm === undefined) && wms.length) {
      const known = wms.map((w) => w.watermark_ms).filter((v) => v !== null && v !== undefined);
      wm = known.length === wms.length ? Math.min(...known) : null;
    }
    $('k-wm').textContent = st && st.final ? 'end of input' : fmtWallShort(wm);
    const lags = wms.map((w) => w.event_time_lag_ms).filter((v) => v !== null && v !== undefined);
    $('k-lag').textContent = `event-time lag ${lags.length ? fmtDuration(Math.max(...lags)) : '—'}`;
    const cl = (st && st.consumer_lag) || [];
    $('k-clag').textContent = st && st.have_query ? nfInt.format(cl.reduce((a, l) => a + l.lag, 0)) : '—';
  }

  function fillTable(id, rows, emptyID) {
    const tb = $(id).querySelector('tbody');
    tb.textContent = '';
    for (const cells of rows) {
      const tr = document.createElement('tr');
      for (const c of cells) {
        const td = document.createElement('td');
        if (c.cls) td.className = c.cls;
        if (c.title) td.title = c.title;
        if (c.color) {
          const sw = document.createElement('span');
          sw.className = 'swatch'; sw.style.background = c.color;
          td.appendChild(sw);
        }
        td.appendChild(document.createTextNode(c.text));
        tr.appendChild(td);
      }
      tb.appendChild(tr);
    }
    $(emptyID).hidden = rows.length > 0;
  }

  function renderPanels() {
    const st = state.status;
    const m = metricByID.get(state.metric);
    const extra = m.id === 'trip_count' ? metricByID.get('avg_total_amount') : m;
    $('open-metric-h').textContent = extra.label;
    const open = openWindows().slice().sort((a, b) => a.window.start_ms - b.window.start_ms || boroughOrder(a.borough, b.borough));
    fillTable('open-table', open.map((w) => [
      { text: `${fmtWall(w.window.start_ms)}–${pad(new Date(w.window.end_ms).getUTCHours())}:00` },
      { text: w.borough, color: colorOf(w.borough) },
      { text: fmtValue(metricByID.get('trip_count'), w.trip_count), cls: 'num' },
      { text: fmtValue(extra, w[extra.id]), cls: 'num' },
    ]), 'open-empty');
    $('open-empty').textContent = st && st.have_query ? 'No open window.' : 'Open windows come from the query API (not reachable).';
    $('open-wm').textContent = st && st.have_query ? `${nfInt.format(open.length)} hour × borough cells; each closes when the watermark passes its end` : '';

    const wms = (st && st.watermarks) || [];
    fillTable('wm-table', wms.map((w) => [
      { text: String(w.partition) },
      { text: w.final ? 'end of input (final marker)' : fmtWall(w.watermark_ms, true) },
      { text: fmtDuration(w.event_time_lag_ms), cls: 'num' },
    ]), 'wm-empty');

    // Groups are "<app>-ingest" and "<app>-windows": show the app once, the stage per row.
    const cl = (st && st.consumer_lag) || [];
    const app = commonPrefix(cl.map((l) => l.group));
    $('lag-app').textContent = app ? `app ${app.replace(/-$/, '')}` : '';
    fillTable('lag-table', cl.map((l) => [
      { text: l.group.slice(app.length) || l.group }, { text: l.topic, cls: 'clip', title: l.topic }, { text: String(l.partition), cls: 'num' }, { text: nfInt.format(l.lag), cls: 'num' },
    ]), 'lag-empty');

    const ul = $('instances');
    ul.textContent = '';
    const insts = (st && st.instances) || [];
    if (!insts.length) {
      const li = document.createElement('li'); li.textContent = 'none configured (--query-url)'; ul.appendChild(li);
    }
    for (const i of insts) {
      const li = document.createElement('li');
      const s = document.createElement('span');
      s.className = 'state ' + (i.up ? 'up' : 'down');
      s.textContent = i.up ? (i.ready ? 'ready' : 'up, not ready') : 'unreachable';
      li.append(`${i.instance ? i.instance + ' · ' : ''}${i.url} `, s);
      if (i.error) { const e = document.createElement('span'); e.className = 'err'; e.textContent = i.error; li.appendChild(e); }
      ul.appendChild(li);
    }
    if (st && st.results) $('results-topic').textContent = st.results.topic;
    // Why the results topic cannot be read now; "broker unreachable: ..." when no
    // Kafka broker answers.
    const rerr = (st && st.results && st.results.error) || '';
    $('results-err').hidden = rerr === '';
    $('results-err').textContent = rerr === '' ? '' : `Results: ${rerr}`;
  }

  // commonPrefix returns the longest common prefix of the names that ends with '-'
  // ("" for fewer than two distinct names).
  function commonPrefix(names) {
    const uniq = Array.from(new Set(names));
    if (uniq.length < 2) return '';
    let p = uniq[0];
    for (const n of uniq) while (!n.startsWith(p)) p = p.slice(0, -1);
    const cut = p.lastIndexOf('-');
    return cut > 0 ? p.slice(0, cut + 1) : '';
  }

  // ---------- rendering schedule ----------
  // Events come in bursts (history, one window's boroughs): render at most every 150 ms.
  let chartDirty = false, panelsDirty = false, timer = null;
  function schedule(chart) {
    chartDirty = chartDirty || chart;
    panelsDirty = true;
    if (timer === null) timer = setTimeout(flush, 150);
  }
  function flush() {
    if (timer !== null) { clearTimeout(timer); timer = null; }
    if (chartDirty) renderChart();
    if (panelsDirty) { renderKPIs(); renderPanels(); }
    chartDirty = panelsDirty = false;
  }

  // ---------- connection ----------
  function setConn(cls, text) {
    const c = $('conn');
    c.classList.remove('live', 'down');
    if (cls) c.classList.add(cls);
    $('conn-text').textContent = text;
  }
  function touched() {
    state.lastEvent = Date.now();
    const d = new Date();
    $('updated').textContent = `updated ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  }

  let es = null;
  function connect() {
    es = new EventSource('events');
    es.addEventListener('hello', (ev) => {
      const h = JSON.parse(ev.data);
      if (state.topic !== null && h.results_topic !== state.topic) state.finals.clear(); // another stream
      state.topic = h.results_topic;
      $('results-topic').textContent = h.results_topic;
      state.connects++;
      state.connected = true;
      state.synced = false;
      setConn('live', 'live');
      touched();
    });
    es.addEventListener('results', (ev) => {
      for (const e of JSON.parse(ev.data)) state.finals.set(e.key, e.value);
      touched();
      schedule(true);
    });
    es.addEventListener('synced', () => { state.synced = true; });
    es.addEventListener('status', (ev) => {
      const prev = state.status;
      state.status = JSON.parse(ev.data);
      touched();
      const openChanged = !prev || JSON.stringify(prev.open_windows) !== JSON.stringify(state.status.open_windows);
      schedule(openChanged);
    });
    es.onerror = () => {
      state.connected = false;
      setConn('down', 'reconnecting…');
      if (es.readyState === EventSource.CLOSED) { // a fatal error: EventSource gave up, so start over
        setTimeout(connect, 2000);
      }
    };
  }

  // ---------- controls ----------
  function setupControls() {
    const sel = $('metric');
    for (const m of METRICS) {
      const o = document.createElement('option');
      o.value = m.id; o.textContent = m.label;
      sel.appendChild(o);
    }
    sel.value = state.metric;
    const onMetric = () => {
      state.metric = sel.value;
      $('metric-name').textContent = metricByID.get(state.metric).name;
      renderChart(); renderPanels();
    };
    sel.addEventListener('change', onMetric);
    sel.addEventListener('input', onMetric);
    $('range').addEventListener('change', (e) => { state.range = e.target.value; renderChart(); });
    new ResizeObserver(() => {
      if (plot) plot.setSize({ width: Math.max(320, $('chart').clientWidth), height: 380 });
    }).observe($('chart'));
  }

  // A hook for tests and scripts: the chart's own data, and what the page holds.
  window.__dashboard = {
    loadId: Math.random().toString(36).slice(2),
    get connects() { return state.connects; },
    get connected() { return state.connected; },
    get synced() { return state.synced; },
    get metric() { return state.metric; },
    metrics: METRICS.map((m) => m.id),
    resultCount: () => state.finals.size,
    results: () => Array.from(state.finals.values()),
    status: () => state.status,
    // series(metric): the final values the chart plots for metric, per borough, aligned with x.
    series: (metric) => { const b = build(metric || state.metric); return { x: b.x, boroughs: b.final }; },
    // provisional(metric): the open windows' running values the chart marks as provisional.
    provisional: (metric) => { const b = build(metric || state.metric); return { x: b.x, boroughs: b.prov }; },
    // revised(): the keys whose latest result is a revision, with its number.
    revised: () => Array.from(state.finals.entries()).filter(([, r]) => r.revision > 0).map(([k, r]) => ({ key: k, revision: r.revision, trip_count: r.trip_count })),
    // chart(): the data arrays uPlot is drawing now, by series label.
    chart: () => {
      flush(); // what was received is drawn now, not after the render delay
      if (!plot) return null;
      const out = { metric: state.metric, x: Array.from(plot.data[0]), series: {} };
      plot.series.forEach((s, i) => { if (i > 0) out.series[s.label] = Array.from(plot.data[i]); });
      return out;
    },
  };

  setupControls();
  renderKPIs();
  renderPanels();
  connect();
})();
