// Small DOM helpers. Every piece of text from the network (names, messages, memos,
// close reasons) goes in as a text node or an attribute value, never as markup
// (no HTML string is ever parsed by this page).

const SVG_NS = 'http://www.w3.org/2000/svg';

function fill(el, attrs, children) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === 'class') el.setAttribute('class', value);
    else if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** An HTML element: h('p', {class: 'x'}, 'text', h('b', {}, 'bold')). */
export function h(tag, attrs, ...children) {
  return fill(document.createElement(tag), attrs, children);
}

/** An SVG element, same calling convention. */
export function s(tag, attrs, ...children) {
  return fill(document.createElementNS(SVG_NS, tag), attrs, children);
}

export function byId(id) {
  return document.getElementById(id);
}

/** Replace an element's children. */
export function put(el, ...children) {
  el.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined));
}

const dollars = new Intl.NumberFormat('en-US', {style: 'currency', currency: 'USD'});
const compact = new Intl.NumberFormat('en-US', {
  style: 'currency', currency: 'USD', notation: 'compact', maximumFractionDigits: 2,
});

/** Integer cents as dollars: 80000 -> "$800.00". */
export function money(cents) {
  return dollars.format(cents / 100);
}

/** Large amounts short ("$19T"), small ones exact. */
export function moneyShort(cents) {
  return Math.abs(cents) >= 100_000_000 ? compact.format(cents / 100) : money(cents);
}

export function shortId(id) {
  return id ? `${id.slice(0, 8)}…${id.slice(-4)}` : '?';
}

export function bytes(n) {
  if (n === null || n === undefined) return '—';
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let value = n;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return `${unit ? value.toFixed(1) : value} ${units[unit]}`;
}

export function duration(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

/** "12 s ago" for a Unix ms time, with the exact time for a title. */
export function ago(ms) {
  const delta = (Date.now() - ms) / 1000;
  return delta < 0 ? 'just now' : `${duration(delta)} ago`;
}

export function when(ms) {
  return new Date(ms).toLocaleString();
}

/** A <time> showing "… ago" with the exact time on hover. */
export function timeAgo(ms) {
  return h('time', {datetime: new Date(ms).toISOString(), title: when(ms)}, ago(ms));
}
