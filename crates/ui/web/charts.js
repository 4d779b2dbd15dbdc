// A small line chart on canvas for the dashboard: several series over time, an automatic
// y scale, a legend with the latest values, colours from the theme.
"use strict";
(function () {
  const { el } = window.hearth;

  class LineChart {
    /** series: [{name, color (CSS variable), format(value) -> text}];
     *  options: {min, max, capacity (samples shown), axis(value) -> text} */
    constructor(container, title, series, options) {
      this.series = series;
      this.options = Object.assign({ min: 0, max: null, capacity: 120 }, options || {});
      this.points = []; // [time, [values...]]
      const box = el("div", "chart");
      box.append(el("h3", "", title));
      this.legend = el("div", "legend");
      box.append(this.legend);
      this.canvas = el("canvas");
      this.canvas.setAttribute("role", "img");
      this.canvas.setAttribute("aria-label", title);
      box.append(this.canvas);
      container.append(box);
      this.box = box;
      box.dataset.chart = title;
      document.addEventListener("hearth-theme", () => this.draw());
      window.addEventListener("resize", () => this.draw());
    }

    push(time, values) {
      this.points.push([time, values]);
      if (this.points.length > this.options.capacity) this.points.shift();
      this.box.dataset.points = String(this.points.length);
      this.draw();
    }

    draw() {
      const canvas = this.canvas;
      const ratio = window.devicePixelRatio || 1;
      const width = canvas.clientWidth, height = canvas.clientHeight;
      if (!width || !height) return;
      canvas.width = Math.round(width * ratio);
      canvas.height = Math.round(height * ratio);
      const ctx = canvas.getContext("2d");
      ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
      ctx.clearRect(0, 0, width, height);
      const style = getComputedStyle(document.documentElement);
      const color = (name) => style.getPropertyValue(name).trim() || "#888";
      const values = this.points.flatMap(([, v]) => v.filter((x) => x != null && isFinite(x)));
      let max = this.options.max != null ? this.options.max : Math.max(1e-9, ...values) * 1.15;
      const min = this.options.min;
      if (!(max > min)) max = min + 1;
      const left = 44, right = 6, top = 6, bottom = 16;
      const plotW = width - left - right, plotH = height - top - bottom;
      ctx.font = "11px system-ui, sans-serif";
      ctx.fillStyle = color("--muted");
      ctx.strokeStyle = color("--grid");
      ctx.lineWidth = 1;
      for (let i = 0; i <= 3; i++) {
        const y = top + plotH - (plotH * i) / 3;
        ctx.beginPath(); ctx.moveTo(left, y); ctx.lineTo(width - right, y); ctx.stroke();
        ctx.fillText((this.options.axis || formatAxis)(min + ((max - min) * i) / 3), 2, y + 4);
      }
      const now = this.points.length ? this.points[this.points.length - 1][0] : 0;
      const span = this.options.capacity;
      ctx.fillText("-" + span + " s", left, height - 3);
      ctx.fillText("now", width - right - 22, height - 3);
      this.series.forEach((series, index) => {
        ctx.strokeStyle = color(series.color);
        ctx.lineWidth = 1.8;
        ctx.beginPath();
        let drawing = false;
        for (const [time, v] of this.points) {
          const value = v[index];
          if (value == null || !isFinite(value)) { drawing = false; continue; }
          const x = left + plotW * (1 - (now - time) / span);
          const y = top + plotH - (plotH * (Math.min(value, max) - min)) / (max - min);
          if (drawing) ctx.lineTo(x, y); else ctx.moveTo(x, y);
          drawing = true;
        }
        ctx.stroke();
      });
      const latest = this.points.length ? this.points[this.points.length - 1][1] : [];
      this.legend.replaceChildren(...this.series.map((series, index) => {
        const item = el("span");
        const swatch = el("i");
        swatch.style.background = color(series.color);
        const value = latest[index];
        item.append(swatch, series.name + " " + (value == null ? "\u2013" : (series.format || formatAxis)(value)));
        return item;
      }));
    }
  }

  function formatAxis(value) {
    const abs = Math.abs(value);
    if (abs >= 1e6) return (value / 1e6).toFixed(1) + "M";
    if (abs >= 1e3) return (value / 1e3).toFixed(1) + "k";
    if (abs >= 10) return value.toFixed(0);
    if (abs >= 1) return value.toFixed(1);
    if (abs === 0) return "0";
    return abs >= 0.01 ? value.toFixed(3).replace(/0$/, "") : value.toPrecision(2);
  }

  window.hearth = Object.assign(window.hearth || {}, { LineChart, formatNumber: formatAxis });
})();
