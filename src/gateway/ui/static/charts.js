// Two small canvas charts of what this page itself observed: events per second, and delays per event (leader's
// commit → this page, and for up/down transitions the check that detected it → this page). No chart library:
// a few dozen lines of canvas do it and keep the page light.

const css = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();

function setup(canvas) {
  const ratio = window.devicePixelRatio || 1;
  const { width, height } = canvas.getBoundingClientRect();
  if (width === 0 || height === 0) return null;
  if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
  }
  const ctx = canvas.getContext('2d');
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, width, height);
  ctx.font = '11px system-ui, sans-serif';
  return { ctx, width, height };
}

/** A "nice" upper bound for an axis: 1, 2 or 5 times a power of ten. */
function niceMax(v) {
  if (v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  return [1, 2, 5, 10].map((m) => m * p).find((m) => m >= v);
}

function axes(ctx, width, height, max, unit, seconds) {
  ctx.strokeStyle = css('--grid');
  ctx.fillStyle = css('--muted');
  ctx.lineWidth = 1;
  for (const f of [0, 0.5, 1]) {
    const y = Math.round(height - 16 - f * (height - 24)) + 0.5;
    ctx.beginPath();
    ctx.moveTo(34, y);
    ctx.lineTo(width, y);
    ctx.stroke();
    ctx.fillText(`${+(max * f).toPrecision(3)}${f === 1 ? unit : ''}`, 0, y + 4);
  }
  ctx.fillText(`-${seconds}s`, 36, height - 2);
  ctx.fillText('now', width - 22, height - 2);
}

/** Bars: one per second over the last `seconds`. */
export function drawRate(canvas, perSecond, seconds) {
  const s = setup(canvas);
  if (!s) return;
  const { ctx, width, height } = s;
  const now = Math.floor(Date.now() / 1000);
  let max = 0;
  for (let i = 0; i < seconds; i++) max = Math.max(max, perSecond.get(now - i) ?? 0);
  max = niceMax(max);
  axes(ctx, width, height, max, '/s', seconds);
  const plot = width - 36;
  const bar = plot / seconds;
  ctx.fillStyle = css('--accent');
  for (let i = 0; i < seconds; i++) {
    const n = perSecond.get(now - i) ?? 0;
    if (!n) continue;
    const h = (n / max) * (height - 24);
    ctx.fillRect(36 + plot - (i + 1) * bar, height - 16 - h, Math.max(1, bar - 1), h);
  }
}

/** Points: each event's delays over the last `seconds`, on a log-free linear axis capped at the 99th percentile. */
export function drawDelays(canvas, delays, seconds) {
  const s = setup(canvas);
  if (!s) return;
  const { ctx, width, height } = s;
  const now = Date.now();
  const recent = delays.filter((d) => d.seen >= now - seconds * 1000);
  const values = recent
    .flatMap((d) => (d.detectMs === null ? [d.leaderMs] : [d.leaderMs, d.detectMs]))
    .sort((a, b) => a - b);
  const max = niceMax(values.length ? Math.max(1, values[Math.floor((values.length - 1) * 0.99)]) : 10);
  axes(ctx, width, height, max, 'ms', seconds);
  const plot = width - 36;
  const x = (t) => 36 + plot - ((now - t) / (seconds * 1000)) * plot;
  const y = (v) => height - 16 - (Math.min(Math.max(v, 0), max) / max) * (height - 24);
  ctx.fillStyle = css('--accent');
  for (const d of recent) ctx.fillRect(x(d.seen) - 1, y(d.leaderMs) - 1, 3, 3);
  ctx.fillStyle = css('--down');
  for (const d of recent) if (d.detectMs !== null) ctx.fillRect(x(d.seen) - 2, y(d.detectMs) - 2, 4, 4);
}

/** Median and 99th percentile of a list of numbers (null when empty). */
export function percentiles(values) {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return { p50: sorted[Math.floor((sorted.length - 1) * 0.5)], p99: sorted[Math.floor((sorted.length - 1) * 0.99)] };
}
