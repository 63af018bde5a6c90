"""The smart contour's learned part: a small convolutional network that, given a crop of the image
and the reader's prompt (a box, a click, correction points), gives each pixel's probability of
belonging to the lesion.

Pure numpy/OpenCV: the network is run by OpenCV's ``cv2.dnn`` from an ONNX file
(``annotator/weights/smart_contour.onnx``), so the app needs neither torch nor onnxruntime. The
same functions build the network's input here and in training (``scripts/train_smart_contour.py``,
run by hand with torch), so what is trained is what is served.

The weights were trained on BUS-UCLM (CC BY-NC 4.0) and inherit its non-commercial licence.
If the file is missing or OpenCV cannot read it, ``load()`` gives None and the smart contour
falls back to its radial dynamic programme.
"""

from __future__ import annotations

import threading
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

SIZE = 96  # the network's input is SIZE x SIZE pixels
CONTEXT = 0.1  # a box crop reaches this fraction of the box's side beyond each side of it
CLICK_SIGMA = 2.5  # crop pixels: the width of a click's mark in its channel
THRESHOLD = 0.5  # probability above which a pixel is lesion
CHANNELS = 4  # grey, box, inside points, outside points
MODEL = Path(__file__).resolve().parent / "weights" / "smart_contour.onnx"

Rect = tuple[int, int, int, int]  # x0, y0, x1, y1 in image pixels, x1 and y1 exclusive


def box_rect(box: tuple[int, int, int, int]) -> Rect:
    """The crop the network sees for a box (x0, y0, x1, y1 inclusive): the box plus some context."""
    x0, y0, x1, y1 = box
    mx, my = round(CONTEXT * (x1 - x0 + 1)), round(CONTEXT * (y1 - y0 + 1))
    return x0 - mx, y0 - my, x1 + 1 + mx, y1 + 1 + my


def window_rect(point: tuple[float, float], side: int) -> Rect:
    """The square crop of ``side`` pixels centred on a click (training drew sides of 400 to 640)."""
    x, y = round(point[0]), round(point[1])
    h = side // 2
    return x - h, y - h, x - h + side, y - h + side


def crop(image: np.ndarray, rect: Rect, interpolation: int = cv2.INTER_AREA) -> np.ndarray:
    """``image`` inside ``rect`` (zeros past its edges) resampled to SIZE x SIZE, float32."""
    x0, y0, x1, y1 = rect
    height, width = image.shape[:2]
    canvas = np.zeros((y1 - y0, x1 - x0), np.float32)
    cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
    if cx1 > cx0 and cy1 > cy0:
        canvas[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0] = image[cy0:cy1, cx0:cx1]
    return cv2.resize(canvas, (SIZE, SIZE), interpolation=interpolation)


def to_crop(rect: Rect, x: float, y: float) -> tuple[float, float]:
    """Image pixel (x, y) in crop pixel coordinates (pixel centres at integers in both)."""
    x0, y0, x1, y1 = rect
    return (x - x0 + 0.5) * SIZE / (x1 - x0) - 0.5, (y - y0 + 0.5) * SIZE / (y1 - y0) - 0.5


def marks(points, sigma: float = CLICK_SIGMA) -> np.ndarray:
    """A SIZE x SIZE channel with a Gaussian bump (peak 1) at each (x, y) in crop pixels."""
    out = np.zeros((SIZE, SIZE), np.float32)
    if len(points) == 0:
        return out
    g = np.arange(SIZE, dtype=np.float32)
    for x, y in points:
        bump = np.exp(-((g[None, :] - x) ** 2 + (g[:, None] - y) ** 2) / (2 * sigma * sigma))
        np.maximum(out, bump, out=out)
    return out


def inputs(gray: np.ndarray, rect: Rect, box=None, inside=(), outside=()) -> np.ndarray:
    """The network's input (CHANNELS x SIZE x SIZE) for the crop ``rect`` of ``gray``.

    Grey levels standardised over the crop (the network should not care about the machine's gain);
    the box as a filled rectangle (all zeros without one: a click's window); inside and outside
    points (image pixels) as Gaussian marks.
    """
    g = crop(gray.astype(np.float32), rect)
    g = (g - g.mean()) / (g.std() + 1.0)
    b = np.zeros((SIZE, SIZE), np.float32)
    if box is not None:
        bx0, by0 = to_crop(rect, box[0] - 0.5, box[1] - 0.5)
        bx1, by1 = to_crop(rect, box[2] + 0.5, box[3] + 0.5)
        xs = np.arange(SIZE, dtype=np.float32)
        b = ((xs[None, :] >= bx0) & (xs[None, :] <= bx1) & (xs[:, None] >= by0) & (xs[:, None] <= by1)).astype(
            np.float32
        )
    pos = marks([to_crop(rect, x, y) for x, y in inside])
    neg = marks([to_crop(rect, x, y) for x, y in outside])
    return np.stack([g, b, pos, neg])


def to_image(prob: np.ndarray, rect: Rect, width: int, height: int) -> np.ndarray:
    """A crop's SIZE x SIZE probabilities back on the image's pixel grid (zero outside ``rect``)."""
    x0, y0, x1, y1 = rect
    full = cv2.resize(prob.astype(np.float32), (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR)
    out = np.zeros((height, width), np.float32)
    cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
    if cx1 > cx0 and cy1 > cy0:
        out[cy0:cy1, cx0:cx1] = full[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0]
    return out


class Net:
    """The ONNX network run by OpenCV; one instance per process, calls serialised (cv2.dnn nets
    are not safe to run from two threads at once)."""

    def __init__(self, path: Path):
        self._net = cv2.dnn.readNetFromONNX(str(path))
        self._lock = threading.Lock()

    def logits(self, x: np.ndarray) -> np.ndarray:
        """The network's raw output (SIZE x SIZE) for one input (CHANNELS x SIZE x SIZE)."""
        with self._lock:
            self._net.setInput(np.ascontiguousarray(x[None], np.float32))
            return self._net.forward().reshape(SIZE, SIZE).copy()

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Probabilities (SIZE x SIZE) for one input."""
        return 1.0 / (1.0 + np.exp(-self.logits(x)))


def reference_input() -> np.ndarray:
    """A fixed input (CHANNELS x SIZE x SIZE) whose logits, as torch computed them at export, are kept
    next to the weights (``reference_path``): the tests check that OpenCV reads the same network."""
    return np.random.default_rng(1).normal(size=(CHANNELS, SIZE, SIZE)).astype(np.float32)


def reference_path(model: Path = MODEL) -> Path:
    return model.with_name(model.stem + "_reference.npy")


@lru_cache(maxsize=4)
def load(path: Path = MODEL) -> Net | None:
    """The network, or None if its file is missing or OpenCV cannot read it (the caller falls back)."""
    if not path.is_file():
        return None
    try:
        net = Net(path)
        net(np.zeros((CHANNELS, SIZE, SIZE), np.float32))  # a file that loads but cannot run counts as missing
    except cv2.error:
        return None
    return net
