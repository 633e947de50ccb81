import { percentile } from "./stats";

// ---------------------------------------------------------------- text table

export function table(rows: (string | number)[][], header: string[]): string {
  const all = [header, ...rows.map((r) => r.map(String))];
  const widths = header.map((_, i) => Math.max(...all.map((r) => String(r[i] ?? "").length)));
  const line = (r: (string | number)[]) =>
    r
      .map((c, i) => String(c).padEnd(widths[i]!))
      .join("  ")
      .trimEnd();
  return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)].join("\n");
}

// ---------------------------------------------------------------- SVG plot

const COLORS = [
  "#1f77b4",
  "#ff7f0e",
  "#2ca02c",
  "#d62728",
  "#9467bd",
  "#8c564b",
  "#e377c2",
  "#7f7f7f",
  "#17becf",
  "#bcbd22",
];

/**
 * Latency by percentile (HdrHistogram style): x is the percentile on a tail-stretching scale
 * (−log10(1 − q): 0%, 90%, 99%, 99.9% equally spaced), y the latency in ms on a log scale.
 * One line per series, from every recorded sample.
 */
export function latencySvg(series: Record<string, number[]>, subtitle: string): string {
  const entries = Object.entries(series).filter(([, v]) => v.length > 0);
  const W = 960,
    H = 560,
    left = 70,
    right = 330,
    top = 56,
    bottom = 60;
  const plotW = W - left - right,
    plotH = H - top - bottom;
  const floor = 0.1; // ms: values at or below (a negative lag is measurement noise around 0) are drawn here
  const sortedSeries = entries.map(
    ([name, values]) => [name, [...values].map((v) => Math.max(v, floor)).sort((a, b) => a - b)] as const,
  );
  const maxN = Math.max(10, ...sortedSeries.map(([, v]) => v.length));
  const xMax = Math.min(4, Math.ceil(Math.log10(maxN) * 2) / 2);
  const all = sortedSeries.flatMap(([, v]) => [v[0]!, v.at(-1)!]);
  const yMin = 10 ** Math.floor(Math.log10(Math.max(floor, Math.min(...all))));
  const yMax = 10 ** Math.ceil(Math.log10(Math.max(...all)));
  const x = (q: number) => left + (Math.min(-Math.log10(Math.max(1 - q, 10 ** -xMax)), xMax) / xMax) * plotW;
  const y = (ms: number) =>
    top + plotH - ((Math.log10(ms) - Math.log10(yMin)) / (Math.log10(yMax) - Math.log10(yMin))) * plotH;
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="Helvetica, Arial, sans-serif" font-size="12">`,
  );
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  out.push(`<text x="${left}" y="24" font-size="16" font-weight="bold">Latency by percentile</text>`);
  out.push(`<text x="${left}" y="42" fill="#555">${escape(subtitle)}</text>`);
  // grid: y decades
  for (let d = Math.log10(yMin); d <= Math.log10(yMax) + 1e-9; d++) {
    const v = 10 ** d;
    out.push(`<line x1="${left}" x2="${left + plotW}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" stroke="#ddd"/>`);
    out.push(
      `<text x="${left - 8}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end">${v >= 1 ? v : v.toPrecision(1)} ms</text>`,
    );
  }
  const ticks: [number, string][] = [
    [0, "0%"],
    [0.5, "50%"],
    [0.9, "90%"],
    [0.99, "99%"],
    [0.999, "99.9%"],
    [0.9999, "99.99%"],
  ];
  for (const [q, label] of ticks) {
    if (-Math.log10(1 - q) > xMax + 1e-9) continue;
    out.push(`<line x1="${x(q).toFixed(1)}" x2="${x(q).toFixed(1)}" y1="${top}" y2="${top + plotH}" stroke="#ddd"/>`);
    out.push(`<text x="${x(q).toFixed(1)}" y="${top + plotH + 18}" text-anchor="middle">${label}</text>`);
  }
  out.push(`<rect x="${left}" y="${top}" width="${plotW}" height="${plotH}" fill="none" stroke="#888"/>`);
  out.push(`<text x="${left + plotW / 2}" y="${H - 18}" text-anchor="middle" fill="#333">percentile</text>`);
  out.push(
    `<text transform="translate(16 ${top + plotH / 2}) rotate(-90)" text-anchor="middle" fill="#333">latency (log scale)</text>`,
  );
  sortedSeries.forEach(([name, values], i) => {
    const color = COLORS[i % COLORS.length]!;
    const dash = i >= COLORS.length ? ` stroke-dasharray="6 3"` : "";
    const n = values.length;
    const step = Math.max(1, Math.floor(n / 600));
    const points: string[] = [];
    for (let k = 0; k < n; k += step) points.push(`${x(k / n).toFixed(1)},${y(values[k]!).toFixed(1)}`);
    points.push(`${x((n - 1) / n).toFixed(1)},${y(values[n - 1]!).toFixed(1)}`);
    out.push(`<polyline fill="none" stroke="${color}" stroke-width="2"${dash} points="${points.join(" ")}"/>`);
    const ly = top + 10 + i * 40;
    out.push(
      `<line x1="${left + plotW + 20}" x2="${left + plotW + 44}" y1="${ly}" y2="${ly}" stroke="${color}" stroke-width="3"${dash}/>`,
    );
    out.push(`<text x="${left + plotW + 50}" y="${ly + 4}">${escape(name)}</text>`);
    const p = (q: number) => fmt(percentile(values, q));
    out.push(`<text x="${left + plotW + 50}" y="${ly + 20}" fill="#555">p50 ${p(50)} · p99 ${p(99)} · n=${n}</text>`);
  });
  out.push(`</svg>`);
  return out.join("\n") + "\n";
}

function fmt(ms: number): string {
  return ms >= 100 ? `${Math.round(ms)} ms` : `${ms.toFixed(ms >= 10 ? 1 : 2)} ms`;
}

function escape(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

// ---------------------------------------------------------------- SVG curves

export interface CurvePanel {
  title: string;
  /** The y axis' unit, e.g. "ms" or "events/s". */
  unit: string;
  /** Lines of [size, value] points; x (the size) on a log scale. */
  series: { label: string; points: [number, number][] }[];
  /** A target drawn as a dashed line (and where it applies, e.g. "≤" or "≥"). */
  target?: { value: number; label: string };
}

/** How cost grows with size: one small chart per curve, side by side in rows of three. */
export function curvesSvg(panels: CurvePanel[], subtitle: string): string {
  const shown = panels.filter((p) => p.series.some((s) => s.points.length > 0));
  const mostSeries = Math.max(0, ...shown.map((p) => p.series.length));
  // Room under each plot for its legend: 15 px a line, the plot keeps its 190 px.
  const cols = 3,
    cellW = 330,
    cellH = 250 + 15 * Math.max(4, mostSeries),
    top = 60;
  const rows = Math.max(1, Math.ceil(shown.length / cols));
  const W = cols * cellW,
    H = top + rows * cellH;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="Helvetica, Arial, sans-serif" font-size="11">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="16" y="24" font-size="16" font-weight="bold">How cost grows with size</text>`,
    `<text x="16" y="42" fill="#555">${escape(subtitle)}</text>`,
  ];
  shown.forEach((panel, n) => {
    const ox = (n % cols) * cellW,
      oy = top + Math.floor(n / cols) * cellH;
    const left = ox + 62,
      plotW = cellW - 84,
      plotTop = oy + 24,
      plotH = 190;
    const points = panel.series.flatMap((s) => s.points);
    const xs = points.map(([x]) => x);
    const ys = [...points.map(([, y]) => y), ...(panel.target ? [panel.target.value] : [])];
    const xMin = Math.min(...xs),
      xMax = Math.max(...xs);
    const yMax = niceCeiling(Math.max(...ys) * 1.05);
    const x = (v: number) =>
      xMax === xMin ? left + plotW / 2 : left + ((Math.log10(v) - Math.log10(xMin)) / Math.log10(xMax / xMin)) * plotW;
    const y = (v: number) => plotTop + plotH - (v / yMax) * plotH;
    out.push(`<text x="${ox + 16}" y="${oy + 12}" font-weight="bold">${escape(panel.title)}</text>`);
    for (let k = 0; k <= 4; k++) {
      const v = (yMax * k) / 4;
      out.push(
        `<line x1="${left}" x2="${left + plotW}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" stroke="#eee"/>`,
      );
      out.push(`<text x="${left - 6}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end">${compact(v)}</text>`);
    }
    for (const v of [...new Set(xs)].sort((a, b) => a - b))
      out.push(`<text x="${x(v).toFixed(1)}" y="${plotTop + plotH + 16}" text-anchor="middle">${compact(v)}</text>`);
    out.push(`<rect x="${left}" y="${plotTop}" width="${plotW}" height="${plotH}" fill="none" stroke="#888"/>`);
    out.push(
      `<text transform="translate(${ox + 14} ${plotTop + plotH / 2}) rotate(-90)" text-anchor="middle" fill="#333">${escape(panel.unit)}</text>`,
    );
    if (panel.target) {
      const ty = y(panel.target.value).toFixed(1);
      out.push(
        `<line x1="${left}" x2="${left + plotW}" y1="${ty}" y2="${ty}" stroke="#d62728" stroke-dasharray="5 4"/>`,
        `<text x="${left + plotW - 4}" y="${Number(ty) - 4}" text-anchor="end" fill="#d62728">${escape(panel.target.label)}</text>`,
      );
    }
    panel.series.forEach((s, i) => {
      const color = COLORS[i % COLORS.length]!;
      const sorted = [...s.points].sort((a, b) => a[0] - b[0]);
      out.push(
        `<polyline fill="none" stroke="${color}" stroke-width="2" points="${sorted.map(([a, b]) => `${x(a).toFixed(1)},${y(b).toFixed(1)}`).join(" ")}"/>`,
      );
      for (const [a, b] of sorted)
        out.push(`<circle cx="${x(a).toFixed(1)}" cy="${y(b).toFixed(1)}" r="3" fill="${color}"/>`);
      const ly = plotTop + plotH + 34 + i * 15;
      out.push(
        `<line x1="${left}" x2="${left + 18}" y1="${ly - 4}" y2="${ly - 4}" stroke="${color}" stroke-width="3"/>`,
      );
      out.push(`<text x="${left + 24}" y="${ly}">${escape(s.label)}</text>`);
    });
  });
  out.push(`</svg>`);
  return out.join("\n") + "\n";
}

function niceCeiling(v: number): number {
  if (v <= 0) return 1;
  const magnitude = 10 ** Math.floor(Math.log10(v));
  return [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((c) => c >= v)!;
}

function compact(v: number): string {
  if (v >= 1e6) return `${+(v / 1e6).toFixed(1)}M`;
  if (v >= 1e3) return `${+(v / 1e3).toFixed(1)}k`;
  return `${+v.toFixed(v < 10 ? 2 : 0)}`;
}
