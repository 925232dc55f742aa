// The mesh as SVG: this node in the middle, the nodes it reaches in rings by hop
// count (from its routes), nodes it cannot reach on the outermost ring. Each ring
// is ordered by the neighbour its nodes are reached through, so branches stay
// together. Deterministic: the same topology draws the same picture.

import {s, shortId} from './dom.js';

const RING = 110; // px between rings, in viewBox units
const LABELS_UP_TO = 60; // more nodes than this: label only this node and its peers

export function drawMesh(svg, topology) {
  const me = topology.nodes.find((n) => n.me);
  if (!me) return;
  const hops = new Map([[me.id, 0]]);
  const via = new Map([[me.id, me.id]]);
  for (const route of topology.routes) {
    hops.set(route.to, route.hops);
    via.set(route.to, route.next_hop);
  }
  const reachable = Math.max(0, ...hops.values());
  const rings = new Map();
  for (const node of topology.nodes) {
    const ring = hops.has(node.id) ? hops.get(node.id) : reachable + 1;
    if (!rings.has(ring)) rings.set(ring, []);
    rings.get(ring).push(node);
  }
  const angle = new Map([[me.id, 0]]);
  const place = new Map([[me.id, [0, 0]]]);
  const order = [...rings.keys()].sort((a, b) => a - b);
  for (const ring of order) {
    if (ring === 0) continue;
    const nodes = rings.get(ring);
    const key = (n) => [angle.get(via.get(n.id)) ?? 7, n.id];
    nodes.sort((a, b) => {
      const [ka, kb] = [key(a), key(b)];
      return ka[0] - kb[0] || (ka[1] < kb[1] ? -1 : ka[1] > kb[1] ? 1 : 0);
    });
    nodes.forEach((node, i) => {
      const theta = (2 * Math.PI * i) / nodes.length - Math.PI / 2 + (ring % 2) * 0.3;
      angle.set(node.id, ((theta % (2 * Math.PI)) + 2 * Math.PI) % (2 * Math.PI));
      place.set(node.id, [ring * RING * Math.cos(theta), ring * RING * Math.sin(theta)]);
    });
  }
  const extent = Math.max(1, order[order.length - 1]) * RING + 70;
  svg.setAttribute('viewBox', `${-extent} ${-extent} ${2 * extent} ${2 * extent}`);

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
    const group = s('g', {class: `node ${kind}`, 'data-id': node.id},
      s('title', {}, `${name}\n${node.id}`),
      s('circle', {cx: x, cy: y, r: node.me ? 16 : 11}));
    if (label || node.me || node.connected) {
      group.append(s('text', {x, y: y + (node.me ? 34 : 28), 'text-anchor': 'middle'},
        name.length > 24 ? `${name.slice(0, 23)}…` : name));
    }
    dots.append(group);
  }
  svg.replaceChildren(edges, dots);
}
