// The shared whiteboard over a video (docs/PROTOCOL.md sections 4.20 and 8.1): coordinates normalised to the
// shown picture (0..65535 across, letterboxing of `object-fit: contain` excluded), operations kept per track
// and drawn on a canvas laid over the video, and a pen that turns a pointer drag into a STROKE.

import { COORD_MAX, coord } from './protocol.js';

/** The rectangle (in CSS pixels, relative to the element's content box) where `video` shows its picture. */
export function contentRect(video) {
  const cw = video.clientWidth;
  const ch = video.clientHeight;
  const vw = video.videoWidth;
  const vh = video.videoHeight;
  if (!vw || !vh || !cw || !ch) return { x: 0, y: 0, w: cw, h: ch };
  const s = Math.min(cw / vw, ch / vh);
  const w = vw * s;
  const h = vh * s;
  return { x: (cw - w) / 2, y: (ch - h) / 2, w, h };
}

/**
 * The normalised position of a pointer at (clientX, clientY) over `video`: pixel px of a w-pixel-wide picture
 * is round(px × 65535 / (w − 1)). Null outside the picture unless `clamp`.
 */
export function normalise(video, clientX, clientY, clamp = false) {
  const box = video.getBoundingClientRect();
  const c = contentRect(video);
  let px = clientX - box.left - video.clientLeft - c.x;
  let py = clientY - box.top - video.clientTop - c.y;
  if (!clamp && (px < 0 || py < 0 || px > c.w || py > c.h)) return null;
  if (c.w < 2 || c.h < 2) return null;
  px = Math.max(0, Math.min(c.w - 1, px));
  py = Math.max(0, Math.min(c.h - 1, py));
  return { x: coord((px * COORD_MAX) / (c.w - 1)), y: coord((py * COORD_MAX) / (c.h - 1)) };
}

function rgba(color) {
  const c = color >>> 0;
  return `rgba(${c >>> 24}, ${(c >>> 16) & 0xff}, ${(c >>> 8) & 0xff}, ${(c & 0xff) / 255})`;
}

/** `#rrggbb` (a colour input's value) as 0xRRGGBBFF. */
export function colorValue(hex) {
  return ((parseInt(hex.slice(1), 16) << 8) | 0xff) >>> 0;
}

/** The whiteboard: every kept operation, in the room's order. */
export class Board {
  constructor() { this.ops = []; }
  reset() { this.ops = []; }
  /** Applies one annotation (CLEAR removes every operation on its track). */
  apply(a) {
    if (a.kind === 'clear') this.ops = this.ops.filter((o) => o.track !== a.track);
    else this.ops.push(a);
  }
  /** Forgets the operations on a track that ended. */
  dropTrack(track) { this.ops = this.ops.filter((o) => o.track !== track); }

  /** Draws the operations on `track` on `canvas`, laid over `video`; `pending` is a stroke being drawn. */
  draw(canvas, video, track, pending) {
    const dpr = window.devicePixelRatio || 1;
    const w = Math.round(video.clientWidth * dpr);
    const h = Math.round(video.clientHeight * dpr);
    if (canvas.width !== w || canvas.height !== h) {
      canvas.width = w;
      canvas.height = h;
    }
    const g = canvas.getContext('2d');
    g.setTransform(1, 0, 0, 1, 0, 0);
    g.clearRect(0, 0, w, h);
    if (track === null || track === undefined) return;
    const c = contentRect(video);
    g.setTransform(dpr, 0, 0, dpr, c.x * dpr, c.y * dpr);
    const X = (v) => (v * Math.max(c.w - 1, 1)) / COORD_MAX;
    const Y = (v) => (v * Math.max(c.h - 1, 1)) / COORD_MAX;
    const ops = this.ops.filter((o) => o.track === track);
    if (pending) ops.push(pending);
    for (const o of ops) {
      g.strokeStyle = g.fillStyle = rgba(o.color);
      g.lineWidth = Math.max(2, (o.width * c.w) / COORD_MAX);
      g.lineCap = g.lineJoin = 'round';
      const p = o.points.map(([x, y]) => [X(x), Y(y)]);
      g.beginPath();
      switch (o.kind) {
        case 'stroke':
          g.moveTo(p[0][0], p[0][1]);
          for (const [x, y] of p.slice(1)) g.lineTo(x, y);
          if (p.length === 1) g.lineTo(p[0][0] + 0.1, p[0][1]);
          g.stroke();
          break;
        case 'rect':
          g.strokeRect(p[0][0], p[0][1], p[1][0] - p[0][0], p[1][1] - p[0][1]);
          break;
        case 'ellipse': {
          const [cx, cy] = [(p[0][0] + p[1][0]) / 2, (p[0][1] + p[1][1]) / 2];
          g.ellipse(cx, cy, Math.abs(p[1][0] - p[0][0]) / 2, Math.abs(p[1][1] - p[0][1]) / 2, 0, 0, 2 * Math.PI);
          g.stroke();
          break;
        }
        case 'arrow': {
          const [[x0, y0], [x1, y1]] = p;
          const a = Math.atan2(y1 - y0, x1 - x0);
          const head = Math.max(10, g.lineWidth * 4);
          g.moveTo(x0, y0);
          g.lineTo(x1, y1);
          g.moveTo(x1 - head * Math.cos(a - 0.5), y1 - head * Math.sin(a - 0.5));
          g.lineTo(x1, y1);
          g.lineTo(x1 - head * Math.cos(a + 0.5), y1 - head * Math.sin(a + 0.5));
          g.stroke();
          break;
        }
        case 'text':
          g.font = `${Math.max(10, (o.width * c.h) / COORD_MAX)}px sans-serif`;
          g.fillText(o.text, p[0][0], p[0][1]);
          break;
        default:
          break;
      }
    }
  }
}

/**
 * A pen on `canvas` (laid over `video`): while `opts.enabled()` is true, a pointer drag collects points and
 * `opts.onStroke(points)` gets them (normalised) when it ends; `opts.onDraw(pending)` redraws meanwhile.
 * The canvas takes pointer events only while the pen is on (CSS class `drawing`).
 */
export function attachPen(canvas, video, opts) {
  let points = null;
  const at = (e) => normalise(video, e.clientX, e.clientY, true);
  canvas.addEventListener('pointerdown', (e) => {
    if (!opts.enabled() || e.button !== 0) return;
    e.preventDefault();
    canvas.setPointerCapture(e.pointerId);
    const p = at(e);
    points = p ? [[p.x, p.y]] : [];
    opts.onDraw(points);
  });
  canvas.addEventListener('pointermove', (e) => {
    if (!points) return;
    const p = at(e);
    const last = points[points.length - 1];
    if (!p || (last && last[0] === p.x && last[1] === p.y) || points.length >= 4096) return;
    points.push([p.x, p.y]);
    opts.onDraw(points);
  });
  const end = () => {
    if (!points) return;
    const done = points;
    points = null;
    opts.onDraw(null);
    if (done.length) opts.onStroke(done);
  };
  canvas.addEventListener('pointerup', end);
  canvas.addEventListener('pointercancel', end);
}
