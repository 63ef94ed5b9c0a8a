// The backend's API, through this dashboard's proxy (same origin: no CORS, the local guard's
// rules). Every answer is JSON; an error's `error` is the message shown.

export class ApiError extends Error {
  constructor(message, status) { super(message); this.status = status; }
}

async function call(path, { method = "GET", body } = {}) {
  let response;
  const headers = { accept: "application/json" };
  // The local guard's rule for writes: a JSON content type, which no cross-site form can send.
  if (method !== "GET") headers["content-type"] = "application/json";
  try {
    response = await fetch(path, { method, headers, body: method === "GET" ? undefined : JSON.stringify(body ?? {}) });
  } catch (e) {
    throw new ApiError("The dashboard itself is not reachable.", 0);
  }
  const answer = await response.json().catch(() => ({}));
  if (response.status === 502 || response.status === 504 || (response.status === 503 && !answer.database)) {
    throw new ApiError("The gati backend is unreachable. Is it running? (`gati status`)", response.status);
  }
  if (!response.ok) throw new ApiError(answer.error || `${path} answered ${response.status}`, response.status);
  return { answer, response };
}

export async function get(path) { return (await call(path)).answer; }

// A list of 0.0.3's shape (a bare array) with its size in `X-Total-Count`, or ours
// (`{<key>: [...], total}`): either way { items, total }.
export async function list(path, key) {
  const { answer, response } = await call(path);
  if (Array.isArray(answer)) {
    const header = response.headers.get("x-total-count");
    return { items: answer, total: header === null ? answer.length : Number(header) };
  }
  return { items: answer[key] || [], total: answer.total ?? (answer[key] || []).length };
}

export async function write(method, path, body) { return (await call(path, { method, body })).answer; }

// `path?k=v&...` without the empty values.
export function query(path, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") q.set(k, v);
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}

export const enc = encodeURIComponent;
