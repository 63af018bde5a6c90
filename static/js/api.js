/* Small client for the BUS Review JSON API (session auth, CSRF header, same-origin cookies).
 *
 * Every call resolves to the parsed JSON body or throws an ApiError. A 409 carries the
 * server's `current` layer (stale version), so a page can show the conflict instead of
 * overwriting someone's work; a network failure is an ApiError with status 0 ("offline").
 */

export class ApiError extends Error {
  constructor(status, body = {}) {
    super(body.detail || (status ? `HTTP ${status}` : "network error"));
    this.status = status;
    this.code = body.code || (status ? `http_${status}` : "offline");
    this.detail = body.detail || this.message;
    this.current = body.current || null; // the server's layer, on 409 stale_version
    this.rule = body.rule;
    this.lesion = body.lesion;
    this.body = body;
  }

  get conflict() {
    return this.status === 409;
  }

  get offline() {
    return this.status === 0;
  }
}

function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  if (meta?.content) return meta.content;
  const m = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  return m ? decodeURIComponent(m[1]) : "";
}

export async function request(method, url, body, { keepalive = false } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET") headers["X-CSRFToken"] = csrfToken();
  let response;
  try {
    response = await fetch(url, {
      method,
      headers,
      credentials: "same-origin",
      // A GET is always checked with the server (the API answers "no-cache" with an ETag): the
      // browser may keep a copy, but never shows a stale one.
      cache: method === "GET" ? "no-cache" : "default",
      body: body === undefined ? undefined : JSON.stringify(body),
      keepalive,
    });
  } catch (err) {
    throw new ApiError(0, { detail: "The server could not be reached." });
  }
  const text = await response.text();
  let data = {};
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      // Not the API's JSON (a proxy's or the server's error page): its markup means nothing to a reader.
      data = { detail: `The server answered HTTP ${response.status}.` };
    }
  }
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

export const getImage = (id) => request("GET", `/api/images/${id}/`);
export const imageUrl = (id) => `/api/images/${id}/image.png`;
/** Fetch the image JSON into the browser's cache (with the JSON Accept the page uses); never throws. */
export const prefetchImage = (id) => request("GET", `/api/images/${id}/`).catch(() => null);
export const startLayer = (imageId) => request("POST", `/api/images/${imageId}/start/`, {});
/** body: {version, lesions: [{label, points, holes}], is_normal, doppler, marks, combined, note} */
export const saveLayer = (layerId, body, opts) => request("PUT", `/api/layers/${layerId}/`, body, opts);
export const submitLayer = (layerId, version) => request("POST", `/api/layers/${layerId}/submit/`, { version });
export const approve = (imageId, { comment = "", version } = {}) =>
  request("POST", `/api/images/${imageId}/approve/`, { comment, version });
/** remarks: [{x?, y?, lesion?, text}] */
export const sendBack = (imageId, { comment, remarks = [], version } = {}) =>
  request("POST", `/api/images/${imageId}/send-back/`, { comment, remarks, version });
/** layer: {lesions, is_normal, doppler, marks, combined, note} */
export const editApprove = (imageId, { comment = "", version, layer }) =>
  request("POST", `/api/images/${imageId}/edit-approve/`, { comment, version, layer });
/** Blind double reading: approve one reading (its layer id) as the consensus. */
export const adjudicate = (imageId, { layer, comment = "" }) =>
  request("POST", `/api/images/${imageId}/adjudicate/`, { layer, comment });
/** startFrom: a reading's layer id, "union" or "intersection"; layer: {lesions, is_normal, ...} */
export const adjudicateEdit = (imageId, { startFrom, layer, comment = "" }) =>
  request("POST", `/api/images/${imageId}/adjudicate-edit/`, { start_from: String(startFrom), layer, comment });
export const returnReading = (imageId, { layers, comment }) =>
  request("POST", `/api/images/${imageId}/return-reading/`, { layers, comment });
/** The union or intersection of the two readings: {lesions, dropped_specks}; nothing is stored. */
export const combinedReadings = (imageId, operation) =>
  request("GET", `/api/images/${imageId}/combined/?operation=${encodeURIComponent(operation)}`);
export const nextReview = () => request("GET", "/api/review-queue/next/");
/**
 * A proposed outline for the lesion in `box` [x0, y0, x1, y1], or under `point` [x, y]: {points};
 * `inside` / `outside` ([[x, y]]) are the reader's corrections to that proposal.
 */
export const proposeContour = (imageId, { box, point, inside = [], outside = [] }) =>
  request("POST", `/api/images/${imageId}/propose/`, {
    ...(box ? { box } : { point }),
    ...(inside.length || outside.length ? { inside, outside } : {}),
  });
export const nextMine = (after) => request("GET", `/api/my-images/next/?after=${encodeURIComponent(after)}`);
/** The 20 most recent background exports: [{id, status, percent, images, size, error, options, created_at}]. */
export const exportJobs = () => request("GET", "/api/export-jobs/");
/** options: {formats: "bus-uclm,coco", patients: "A,B", exclude_doppler, exclude_marks, exclude_combined} */
export const startExportJob = (options) => request("POST", "/api/export-jobs/", options);
/** boxes: [{x, y, w, h}] in image pixels; answers {released: [image names]}. */
export const redact = (imageId, { boxes, applyToGroup = false }) =>
  request("POST", `/api/images/${imageId}/redact/`, { boxes, apply_to_group: applyToGroup });
export const exportJobDownloadUrl = (id) => `/api/export-jobs/${id}/download/`;

/** The drawable part of a layer, in the shape PUT and edit-approve take. */
export function layerContent(data) {
  return {
    lesions: (data.lesions || []).map((l) => ({
      label: l.label, points: l.points, holes: l.holes || [], descriptors: l.descriptors || {},
    })),
    is_normal: !!data.is_normal,
    doppler: !!data.doppler,
    marks: !!data.marks,
    combined: !!data.combined,
    note: data.note || "",
    assessment: data.assessment || "",
  };
}
