// The mesh as SVG, as a radial tree of this node's routes: this node in the middle,
// each node at a distance of its hop count, each branch in an angle proportional
// to the nodes it leads to; links off the tree are drawn too, and nodes this node
// has no route to sit on an outer ring. Deterministic: the same topology draws the
// same picture. The viewBox fits the drawing, so a small mesh is not a speck.

import {s, shortId} from './dom.js';

const RING = 90; // viewBox units between rings
const MARGIN = 90; // room for labels around the drawing
const MIN_SIZE = 420; // the smallest viewBox side: a lone node is not drawn huge
const LABELS_UP_TO = 60; // more nodes than this: label only this node and its peers

function byId(a, b) {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function drawMesh(svg, topology) {
  const me = topology.nodes.find((n) => n.me);
  if (!me) return;
  const parent = new Map();
  const depth = new Map([[me.id, 0]]);
  for (const route of topology.routes) {
    depth.set(route.to, route.hops);
    parent.set(route.to, route.path.length > 1 ? route.path[route.path.length - 2] : me.id);
  }
  const children = new Map();
  for (const [child, up] of parent) {
    if (!children.has(up)) children.set(up, []);
    children.get(up).push(child);
  }
  for (const list of children.values()) list.sort(byId);
  const weight = new Map();
  const weigh = (id) => {
    const w = (children.get(id) || []).reduce((sum, c) => sum + weigh(c), 0) || 1;
    weight.set(id, w);
    return w;
  };
  weigh(me.id);

  const place = new Map([[me.id, [0, 0]]]);
  const spread = (id, from, to) => {
    let start = from;
    for (const child of children.get(id) || []) {
      const span = ((to - from) * weight.get(child)) / weight.get(id);
      const theta = start + span / 2;
      const r = depth.get(child) * RING;
      place.set(child, [r * Math.cos(theta), r * Math.sin(theta)]);
      spread(child, start, start + span);
      start += span;
    }
  };
  spread(me.id, -Math.PI / 2, (3 * Math.PI) / 2);
  const unreached = topology.nodes.filter((n) => !place.has(n.id)).map((n) => n.id).sort(byId);
  const outer = (Math.max(0, ...depth.values()) + 1) * RING;
  unreached.forEach((id, i) => {
    const theta = (2 * Math.PI * (i + 0.5)) / unreached.length - Math.PI / 2;
    place.set(id, [outer * Math.cos(theta), outer * Math.sin(theta)]);
  });

  const xs = [...place.values()].map((p) => p[0]);
  const ys = [...place.values()].map((p) => p[1]);
  const [cx, cy] = [(Math.min(...xs) + Math.max(...xs)) / 2, (Math.min(...ys) + Math.max(...ys)) / 2];
  const [spanX, spanY] = [Math.max(...xs) - Math.min(...xs), Math.max(...ys) - Math.min(...ys)];
  // Node sizes and labels in screen pixels: on a narrow screen a wide mesh is scaled
  // down, so draw them `k` times larger in viewBox units to keep them readable.
  const shown = svg.getBoundingClientRect().width || spanX + 2 * MARGIN;
  const k = Math.max(1, (spanX + 2 * MARGIN) / shown);
  const w = Math.max(MIN_SIZE, spanX + 2 * MARGIN * k);
  const h = Math.max(MIN_SIZE / 2, spanY + 1.2 * MARGIN * k);
  svg.setAttribute('viewBox', `${cx - w / 2} ${cy - h / 2} ${w} ${h}`);

  const edges = s('g', {class: 'edges'});
  for (const link of topology.links) {
    const [a, b] = [place.get(link.a), place.get(link.b)];
    if (!a || !b) continue;
    const mine = link.a === me.id || link.b === me.id;
    edges.append(s('line', {x1: a[0], y1: a[1], x2: b[0], y2: b[1],
      class: mine ? 'link mine' : 'link'},
    s('title', {}, `${link.rtt_ms} ms`)));
  }
  const dots = s('g', {class: 'nodes'});
  const label = topology.nodes.length <= LABELS_UP_TO;
  for (const node of topology.nodes) {
    const [x, y] = place.get(node.id);
    const kind = node.me ? 'me' : node.connected ? 'peer' : node.expires_ms ? 'other' : 'stale';
    const name = node.name || shortId(node.id);
    const radius = (node.me ? 15 : 10) * k;
    const group = s('g', {class: `node ${kind}`, 'data-id': node.id},
      s('title', {}, `${name}\n${node.id}`),
      s('circle', {cx: x, cy: y, r: radius}));
    if (label || node.me || node.connected) {
      group.append(labelAt(x, y, radius, k, name.length > 24 ? `${name.slice(0, 23)}…` : name));
    }
    dots.append(group);
  }
  svg.replaceChildren(edges, dots);
}

/** A label just outside its node, away from the centre, so it does not sit on links. */
function labelAt(x, y, radius, k, text) {
  const size = 14 * k;
  const r = Math.hypot(x, y);
  if (r < 1) {
    return s('text', {x, y: y + radius + size * 1.3, 'text-anchor': 'middle', 'font-size': size},
      text);
  }
  const [ux, uy] = [x / r, y / r];
  const gap = radius + 7 * k;
  const anchor = ux > 0.35 ? 'start' : ux < -0.35 ? 'end' : 'middle';
  const dy = (Math.abs(ux) > 0.35 ? 0.35 : uy > 0 ? 1 : -0.3) * size;
  return s('text', {x: x + ux * gap, y: y + uy * gap + dy, 'text-anchor': anchor,
    'font-size': size}, text);
}
