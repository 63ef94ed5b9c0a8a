// Building the page, and updating it in place without flicker.

// An element: attributes in the order given (null, undefined and false leave one out, true sets
// it empty), children flattened (null and false leave one out). No listeners: the page handles
// events by delegation (`data-action`), so `morph` can move an element's new state into the old
// one without losing anything.
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    node.setAttribute(key, value === true ? "" : String(value));
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(node, child);
    else node.append(child instanceof Node ? child : String(child));
  }
}

export function svg(markup, cls = "icon") {
  const span = document.createElement("span");
  span.className = cls;
  span.setAttribute("aria-hidden", "true");
  span.innerHTML = markup; // our own constant icons, never data
  return span;
}

// Makes `from` (in the page) look like `to` (just built), touching only what differs: focus,
// scroll, text selection, an open <details> and the charts' canvases (inside `data-keep`) stay.
// Children are matched by position, and by `data-key` where the list can change.
export function morph(from, to) {
  syncAttributes(from, to);
  if (from.hasAttribute("data-keep")) return;
  const old = [...from.childNodes];
  const now = [...to.childNodes];
  now.forEach((node, i) => {
    const was = old[i];
    if (!was) from.append(node);
    else if (!alike(was, node)) from.replaceChild(node, was);
    else if (was.nodeType === Node.TEXT_NODE) {
      if (was.nodeValue !== node.nodeValue) was.nodeValue = node.nodeValue;
    } else if (was.nodeType === Node.ELEMENT_NODE) morph(was, node);
  });
  for (let i = old.length - 1; i >= now.length; i--) old[i].remove();
}

function alike(a, b) {
  if (a.nodeType !== b.nodeType) return false;
  if (a.nodeType !== Node.ELEMENT_NODE) return true;
  const key = (n) => n.getAttribute("data-key") ?? n.getAttribute("data-event-id");
  return a.tagName === b.tagName && key(a) === key(b);
}

function syncAttributes(from, to) {
  for (const { name } of [...from.attributes]) {
    if (!to.hasAttribute(name) && !(name === "open" && from.tagName === "DETAILS")) from.removeAttribute(name);
  }
  for (const { name, value } of [...to.attributes]) {
    if (from.getAttribute(name) !== value) from.setAttribute(name, value);
  }
  // What the user is typing stays; an input not in use shows what the page now says.
  if ((from.tagName === "INPUT" || from.tagName === "SELECT") && document.activeElement !== from
      && from.value !== to.value) {
    from.value = to.value;
  }
}
