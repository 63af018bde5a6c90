"""Train the smart contour's network and export it to ONNX (needs torch: run by hand, never by the app).

    python3 -m venv /work/venv-train
    /work/venv-train/bin/pip install torch==2.13.0 numpy opencv-python-headless onnx pillow
    /work/venv-train/bin/python scripts/train_smart_contour.py --release /path/to/BUS-UCLM/release \
        [--split ../shared/data/bus-uclm-split.csv] [--minutes 20] [--seed 0] \
        [--out annotator/weights/smart_contour.onnx] [--holdout]

Data: the lesions of the ``tune`` patients of the public BUS-UCLM release (CC BY-NC 4.0: the
weights inherit its non-commercial licence), never the ``test`` ones; plus generated images
(``annotator.demo``, seeds from 1000, which the tests do not use). ``--holdout`` keeps every fifth
tune patient out of training (the validation set used to choose the design; the shipped weights
are trained on all tune patients).

Samples, drawn afresh at every step (seeded): a box as the benchmark draws one (the lesion's
bounding box plus 10..20 px per side, sometimes 3..35) with, in a third of them, a click in the
lesion's middle; or a click in the lesion's middle with a square window of 400..640 px round it
and no box. Half the box batches also get one to three correction clicks the way the NoC
benchmark places them: the network's own answer is computed first, then a click at the centre of
its largest error region (inside or outside point). Augmentation: horizontal flips, gamma,
speckle-like noise. Loss: binary cross-entropy plus soft Dice, AdamW with a cosine schedule
over the time budget, two threads. The input is built by ``annotator.contour_net`` (the code the
app runs), the network exported with the legacy exporter and checked against OpenCV's reading.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from annotator import contour_net, demo, geometry  # noqa: E402
from bench.smart_contour_dice import read_split  # noqa: E402  (the split as the benchmark reads it)

SIZE = contour_net.SIZE


# --- data -------------------------------------------------------------------------------------


class Lesion:
    def __init__(self, patient: str, gray: np.ndarray, mask: np.ndarray, box: list[int]):
        self.patient = patient
        self.gray = gray
        self.mask = mask
        self.bbox = box  # x, y, w, h
        depth = cv2.distanceTransform(mask, cv2.DIST_L2, 5)
        ys, xs = np.nonzero(depth >= 0.5 * depth.max())
        self.middle = np.c_[xs, ys]


def release_lesions(release: Path, split: dict[str, str]) -> list[Lesion]:
    """Every lesion of the ``tune`` patients (never ``test``)."""
    out = []
    for path in sorted((release / "masks").glob("*.png")):
        patient = path.name.split("_")[0]
        if split.get(patient) != "tune":
            continue
        rgb = cv2.imread(str(path), cv2.IMREAD_COLOR)[:, :, ::-1]
        lesions = geometry.extract_lesions(rgb).lesions
        if not lesions:
            continue
        gray = cv2.imread(str(release / "images" / path.name), cv2.IMREAD_GRAYSCALE)
        h, w = gray.shape
        for lesion in lesions:
            out.append(Lesion(patient, gray, geometry.lesion_mask(lesion, w, h), geometry.bbox(lesion)))
    return out


def demo_lesions(n: int) -> list[Lesion]:
    out = []
    for seed in range(1000, 1000 + n):
        label = geometry.BENIGN if seed % 2 else geometry.MALIGNANT
        png, lesions = demo.generate(seed, [label])
        gray = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_GRAYSCALE)
        h, w = gray.shape
        out.append(Lesion("demo", gray, geometry.lesion_mask(lesions[0], w, h), geometry.bbox(lesions[0])))
    return out


def loose_box(lesion: Lesion, rng: np.random.Generator, lo: int = 10, hi: int = 20) -> tuple[int, int, int, int]:
    x, y, w, h = lesion.bbox
    height, width = lesion.gray.shape
    left, top, right, bottom = (int(v) for v in rng.integers(lo, hi + 1, size=4))
    return max(0, x - left), max(0, y - top), min(width - 1, x + w - 1 + right), min(height - 1, y + h - 1 + bottom)


def augmented_gray(gray: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    gamma = float(np.exp(rng.uniform(-0.4, 0.4)))
    lut = np.clip(255.0 * (np.arange(256) / 255.0) ** gamma, 0, 255).astype(np.uint8)
    return cv2.LUT(gray, lut)


def sample(lesion: Lesion, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, bool]:
    """(input, target, is a box sample) for one lesion."""
    gray = augmented_gray(lesion.gray, rng)
    middle = lesion.middle[rng.integers(len(lesion.middle))].astype(float)
    if rng.random() < 0.7:
        box = loose_box(lesion, rng) if rng.random() < 0.8 else loose_box(lesion, rng, 3, 35)
        rect = contour_net.box_rect(box)
        inside = [middle] if rng.random() < 0.33 else []
        x = contour_net.inputs(gray, rect, box=box, inside=inside)
        is_box = True
    else:
        rect = contour_net.window_rect(middle, int(rng.integers(400, 641)))
        x = contour_net.inputs(gray, rect, inside=[middle])
        is_box = False
    if rng.random() < 0.3:  # speckle-like multiplicative noise on the standardised grey
        x[0] += rng.normal(0, 0.15, x[0].shape).astype(np.float32)
    y = contour_net.crop(lesion.mask.astype(np.float32), rect)
    if rng.random() < 0.5:
        x, y = x[:, :, ::-1].copy(), y[:, ::-1].copy()
    return x, y, is_box


def next_click(pred: np.ndarray, truth: np.ndarray) -> tuple[float, float, bool] | None:
    """As bench/smart_contour_noc.py: the centre of the largest error region, inside or outside."""
    best = None
    for err, inside in ((truth & ~pred, True), (pred & ~truth, False)):
        depth = cv2.distanceTransform(np.pad(err.astype(np.uint8), 1), cv2.DIST_L2, 5)[1:-1, 1:-1]
        d = float(depth.max())
        if d > 1.0 and (best is None or d > best[0]):
            yy, xx = np.unravel_index(int(np.argmax(depth)), depth.shape)
            best = (d, float(xx), float(yy), inside)
    return None if best is None else best[1:]


# --- network ----------------------------------------------------------------------------------


def block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class UNet(nn.Module):
    def __init__(self, widths=(16, 32, 64, 96)):
        super().__init__()
        a, b, c, d = widths
        self.e1, self.e2, self.e3 = block(contour_net.CHANNELS, a), block(a, b), block(b, c)
        self.mid = block(c, d)
        self.u3, self.d3 = nn.ConvTranspose2d(d, c, 2, stride=2), block(2 * c, c)
        self.u2, self.d2 = nn.ConvTranspose2d(c, b, 2, stride=2), block(2 * b, b)
        self.u1, self.d1 = nn.ConvTranspose2d(b, a, 2, stride=2), block(2 * a, a)
        self.head = nn.Conv2d(a, 1, 1)

    def forward(self, x):
        e1 = self.e1(x)
        e2 = self.e2(F.max_pool2d(e1, 2))
        e3 = self.e3(F.max_pool2d(e2, 2))
        m = self.mid(F.max_pool2d(e3, 2))
        d3 = self.d3(torch.cat([self.u3(m), e3], 1))
        d2 = self.d2(torch.cat([self.u2(d3), e2], 1))
        d1 = self.d1(torch.cat([self.u1(d2), e1], 1))
        return self.head(d1)


def loss_fn(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    bce = F.binary_cross_entropy_with_logits(logits, target)
    p = torch.sigmoid(logits)
    inter = (p * target).sum((1, 2, 3))
    dice = 1 - (2 * inter + 1) / (p.sum((1, 2, 3)) + target.sum((1, 2, 3)) + 1)
    return bce + dice.mean()


def add_corrections(model: nn.Module, x: np.ndarray, y: np.ndarray, rounds: int) -> np.ndarray:
    """Correction clicks placed where the network's own answer is most wrong, ``rounds`` times."""
    truth = y > 0.5
    for _ in range(rounds):
        with torch.no_grad():
            model.eval()
            pred = (model(torch.from_numpy(x)).numpy()[:, 0] > 0).astype(bool)
            model.train()
        for i in range(len(x)):
            click = next_click(pred[i], truth[i])
            if click is not None:
                cx, cy, inside = click
                channel = 2 if inside else 3
                x[i, channel] = np.maximum(x[i, channel], contour_net.marks([(cx, cy)]))
    return x


def batch(lesions, rng, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    xs, ys, boxes = zip(*(sample(lesions[rng.integers(len(lesions))], rng) for _ in range(n)), strict=True)
    return np.stack(xs), np.stack(ys)[:, None], np.array(boxes)


def validate(model: nn.Module, val: list[tuple[np.ndarray, np.ndarray]]) -> float:
    """Median Dice (crop level, threshold 0.5) on fixed validation samples."""
    model.eval()
    scores = []
    with torch.no_grad():
        for i in range(0, len(val), 64):
            x = torch.from_numpy(np.stack([v[0] for v in val[i : i + 64]]))
            pred = model(x).numpy()[:, 0] > 0
            for p, (_, t) in zip(pred, val[i : i + 64], strict=True):
                t = t > 0.5
                scores.append(2 * (p & t).sum() / max(p.sum() + t.sum(), 1))
    model.train()
    return float(np.median(scores))


def export(model: nn.Module, out: Path) -> None:
    model.eval()
    dummy = torch.zeros(1, contour_net.CHANNELS, SIZE, SIZE)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(
        model, dummy, str(out), input_names=["x"], output_names=["logits"], opset_version=13, dynamo=False
    )
    # What OpenCV reads must be what torch computes; the test suite checks the app's reading
    # against torch's answer, kept next to the weights (float16: 18 KB).
    x = contour_net.reference_input()[None]
    net = cv2.dnn.readNetFromONNX(str(out))
    net.setInput(x)
    got = net.forward().reshape(SIZE, SIZE)
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy().reshape(SIZE, SIZE)
    np.save(contour_net.reference_path(out), want.astype(np.float16))
    diff = np.abs(got - want).max()
    print(f"exported {out} ({out.stat().st_size / 1024:.0f} KB); OpenCV vs torch max |diff| {diff:.2e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--release", type=Path, required=True, help="the BUS-UCLM release (images/, masks/)")
    parser.add_argument("--split", type=Path, default=ROOT.parent / "shared" / "data" / "bus-uclm-split.csv")
    parser.add_argument("--minutes", type=float, default=20.0)
    parser.add_argument("--batch", type=int, default=24)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--demo", type=int, default=40, help="generated images to train on as well")
    parser.add_argument("--holdout", action="store_true", help="keep every fifth tune patient out (validation)")
    parser.add_argument("--out", type=Path, default=ROOT / "annotator" / "weights" / "smart_contour.onnx")
    args = parser.parse_args()

    torch.set_num_threads(2)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed + 12345)  # not the benchmark's seeds
    split = read_split(args.split)
    lesions = release_lesions(args.release, split)
    tune_patients = sorted({les.patient for les in lesions})
    held = set(tune_patients[::5]) if args.holdout else set()
    train = [les for les in lesions if les.patient not in held] + demo_lesions(args.demo)
    val_lesions = [les for les in lesions if les.patient in held]
    print(f"{len(lesions)} tune lesions of {len(tune_patients)} patients; held out {sorted(held) or 'none'}")
    vrng = np.random.default_rng(999)
    val = [sample(les, vrng)[:2] for les in val_lesions for _ in range(4)]

    model = UNet()
    print(f"parameters: {sum(p.numel() for p in model.parameters())}")
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    budget = args.minutes * 60
    start = time.monotonic()
    step, losses = 0, []
    while (elapsed := time.monotonic() - start) < budget:
        for group in opt.param_groups:
            group["lr"] = args.lr * 0.5 * (1 + math.cos(math.pi * elapsed / budget))
        x, y, is_box = batch(train, rng, args.batch)
        if rng.random() < 0.5:
            chosen = is_box & (rng.random(len(x)) < 0.7)
            if chosen.any():
                x[chosen] = add_corrections(model, x[chosen], y[chosen, 0], int(rng.integers(1, 4)))
        logits = model(torch.from_numpy(x))
        loss = loss_fn(logits, torch.from_numpy(y))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        step += 1
        if step % 100 == 0:
            msg = f"step {step} {elapsed / 60:.1f} min loss {np.mean(losses[-100:]):.3f}"
            if val:
                score = validate(model, val)
                msg += f" val median Dice {score:.3f}"
            print(msg, flush=True)
    if val:
        print(f"final val median Dice {validate(model, val):.3f}")
    print(f"{step} steps in {(time.monotonic() - start) / 60:.1f} min")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    export(model, args.out)


if __name__ == "__main__":
    main()
