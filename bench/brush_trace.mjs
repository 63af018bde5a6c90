// Helper of bench/brush_trace.py: times one brush stroke's pixel round trip with the browser's
// own modules (raster.js lesionBox, viewer-brush.js strokeMask, trace.js traceMask) under Node.
// Input on argv[2]: JSON {lesion, strokes: [{points, r, erase}], width, height, repeat}.
import { strokeMask } from "../static/js/viewer-brush.js";
import { traceMask } from "../static/js/trace.js";

const { lesion, strokes, width, height, repeat } = JSON.parse(process.argv[2]);
const out = [];
for (const s of strokes) {
  const times = [];
  let result = null;
  for (let k = 0; k < repeat; k++) {
    const t0 = process.hrtime.bigint();
    const mask = strokeMask(lesion, s.points, s.r, s.erase, width, height);
    result = traceMask(mask);
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  const mask = strokeMask(lesion, s.points, s.r, s.erase, width, height);
  let painted = 0;
  for (const v of mask.data) painted += v;
  out.push({ times, pieces: result.lesions.length, points: result.lesions.reduce((n, l) => n + l.points.length, 0),
    box: [mask.x0, mask.y0, mask.w, mask.h], mask: Array.from(mask.data), painted });
}
process.stdout.write(JSON.stringify(out));
