// A small hand-drawn SVG line chart: stacked panels, each with its own lines, scale and legend.

const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 720;
const PANEL_HEIGHT = 150;
const LEFT = 56;
const RIGHT = 12;
const TOP = 22;
const BOTTOM = 18;

function element(name, attributes, text) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

/**
 * Draw `panels` ([{title, unit, lines: [{name, color, values: [number|null]}]}]) into `svg`; every line
 * has one value per point in time, null for "not known yet" (a gap).
 */
export function drawChart(svg, panels) {
  svg.replaceChildren();
  svg.setAttribute("viewBox", `0 0 ${WIDTH} ${PANEL_HEIGHT * panels.length}`);
  panels.forEach((panel, index) => drawPanel(svg, panel, index * PANEL_HEIGHT));
}

function drawPanel(svg, panel, top) {
  const x0 = LEFT;
  const x1 = WIDTH - RIGHT;
  const y0 = top + PANEL_HEIGHT - BOTTOM;
  const y1 = top + TOP;
  const known = panel.lines.flatMap((line) => line.values.filter((v) => v !== null && Number.isFinite(v)));
  const max = Math.max(...known, 0) * 1.15 || 1;
  const count = Math.max(...panel.lines.map((line) => line.values.length), 2);
  const x = (i) => x0 + (x1 - x0) * (i / (count - 1));
  const y = (v) => y0 - (y0 - y1) * (v / max);
  svg.append(element("text", { x: 4, y: top + 14, class: "chart-title" }, panel.title));
  svg.append(element("line", { x1: x0, y1: y0, x2: x1, y2: y0, class: "chart-axis" }));
  svg.append(element("line", { x1: x0, y1: y0, x2: x0, y2: y1, class: "chart-axis" }));
  for (const fraction of [0.5, 1]) {
    const value = (max / 1.15) * fraction;
    svg.append(element("line", { x1: x0, y1: y(value), x2: x1, y2: y(value), class: "chart-grid" }));
    svg.append(element("text", { x: x0 - 4, y: y(value) + 4, class: "chart-label", "text-anchor": "end" },
      `${value.toPrecision(2)}${panel.unit}`));
  }
  let legendX = x1;
  for (const line of [...panel.lines].reverse()) {
    const label = element("text", { x: legendX, y: top + 14, class: "chart-legend", "text-anchor": "end",
      fill: line.color }, line.name);
    svg.append(label);
    legendX -= 8 + 7 * line.name.length;
    const runs = [];
    let run = [];
    line.values.forEach((value, i) => {
      if (value === null || !Number.isFinite(value)) {
        if (run.length) runs.push(run);
        run = [];
      } else {
        run.push(`${x(i).toFixed(1)},${y(value).toFixed(1)}`);
      }
    });
    if (run.length) runs.push(run);
    for (const points of runs) {
      if (points.length === 1) {
        const [cx, cy] = points[0].split(",");
        svg.append(element("circle", { cx, cy, r: 2.5, fill: line.color, class: "chart-point" }));
      } else {
        svg.append(element("polyline", { points: points.join(" "), stroke: line.color, class: "chart-line" }));
      }
    }
  }
}
