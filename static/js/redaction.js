/* The redaction contact sheet: one editable set of black boxes per image, in image pixels.
 *
 * The boxes are the source of truth; render() places them in % of the image, so they follow the
 * displayed size. Dragging on an image adds a box, clicking a box removes it; Confirm posts the
 * boxes (the server validates them and paints them into the stored PNG) and removes every image
 * the server released (with "same boxes for this group", the whole group).
 */
import { redact } from "./api.js";

const MIN_SIDE = 2; // image pixels: a click without a drag adds no box

const clamp = (v, lo, hi) => Math.min(Math.max(v, lo), hi);

function setup(fig) {
  const id = Number(fig.dataset.id);
  const width = Number(fig.dataset.width);
  const height = Number(fig.dataset.height);
  const stage = fig.querySelector(".sheet-stage");
  const error = fig.querySelector(".error");
  let boxes = JSON.parse(fig.dataset.boxes || "[]").map(({ x, y, w, h }) => ({ x, y, w, h }));

  function place(el, b) {
    el.style.left = `${(b.x / width) * 100}%`;
    el.style.top = `${(b.y / height) * 100}%`;
    el.style.width = `${(b.w / width) * 100}%`;
    el.style.height = `${(b.h / height) * 100}%`;
  }

  function render() {
    stage.querySelectorAll(".box").forEach((el) => el.remove());
    boxes.forEach((b, i) => {
      const el = document.createElement("div");
      el.className = "box";
      el.title = "Click to remove this box";
      place(el, b);
      el.addEventListener("pointerdown", (ev) => ev.stopPropagation());
      el.addEventListener("click", () => {
        boxes.splice(i, 1);
        render();
      });
      stage.append(el);
    });
    fig.querySelector(".box-count").textContent = `${boxes.length} box(es)`;
  }

  function toImage(ev) {
    const r = stage.getBoundingClientRect();
    return {
      x: clamp(((ev.clientX - r.left) / r.width) * width, 0, width),
      y: clamp(((ev.clientY - r.top) / r.height) * height, 0, height),
    };
  }

  let start = null;
  let ghost = null;
  const spanOf = (a, b) => {
    const x0 = Math.floor(Math.min(a.x, b.x));
    const y0 = Math.floor(Math.min(a.y, b.y));
    const x1 = Math.ceil(Math.max(a.x, b.x));
    const y1 = Math.ceil(Math.max(a.y, b.y));
    return { x: x0, y: y0, w: x1 - x0, h: y1 - y0 };
  };
  stage.addEventListener("pointerdown", (ev) => {
    ev.preventDefault();
    start = toImage(ev);
    stage.setPointerCapture(ev.pointerId);
    ghost = document.createElement("div");
    ghost.className = "box drawing";
    stage.append(ghost);
  });
  stage.addEventListener("pointermove", (ev) => {
    if (start) place(ghost, spanOf(start, toImage(ev)));
  });
  stage.addEventListener("pointerup", (ev) => {
    if (!start) return;
    const box = spanOf(start, toImage(ev));
    start = null;
    ghost.remove();
    if (box.w >= MIN_SIDE && box.h >= MIN_SIDE) boxes.push(box);
    render();
  });

  fig.querySelector(".clear").addEventListener("click", () => {
    boxes = [];
    render();
  });
  fig.querySelector(".confirm").addEventListener("click", async (ev) => {
    const button = ev.currentTarget;
    button.disabled = true;
    error.hidden = true;
    try {
      const applyToGroup = fig.querySelector(".apply-group").checked;
      const { released } = await redact(id, { boxes, applyToGroup });
      for (const name of released) document.querySelector(`figure.sheet-item[data-name="${name}"]`)?.remove();
      document.getElementById("redaction-message").textContent = `Released: ${released.join(", ")}`;
    } catch (err) {
      error.textContent = err.detail;
      error.hidden = false;
      button.disabled = false;
    }
  });
  render();
}

document.querySelectorAll("figure.sheet-item").forEach(setup);
