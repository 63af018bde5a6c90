"""Procedurally generated ultrasound-like images for the demo (no real patient data ships).

An image has tissue layers under the probe, multiplicative speckle, and dark lesions: benign
ones oval and circumscribed with posterior enhancement, malignant ones irregular with posterior
shadowing. The true outlines come back with the pixels so the demo can pre-fill layers.
"""

from __future__ import annotations

import io
import math

import cv2
import numpy as np
import PIL.Image

from annotator import geometry

WIDTH, HEIGHT = 856, 606


def _smooth_noise(rng: np.random.Generator, h: int, w: int, scale: int) -> np.ndarray:
    small = rng.random((h // scale + 2, w // scale + 2))
    img = PIL.Image.fromarray((small * 255).astype(np.uint8)).resize((w, h), PIL.Image.Resampling.BICUBIC)
    return np.asarray(img, dtype=np.float32) / 255.0


def _outline(rng, cx, cy, rx, ry, angle, irregular: bool, n: int = 48) -> list[list[float]]:
    t = np.linspace(0, 2 * math.pi, n, endpoint=False)
    r = 1 + (
        0.18 * np.sin(5 * t + rng.random() * 6) + 0.12 * np.sin(9 * t + rng.random() * 6)
        if irregular
        else 0.04 * np.sin(3 * t + rng.random() * 6)
    )
    x = rx * r * np.cos(t)
    y = ry * r * np.sin(t)
    ca, sa = math.cos(angle), math.sin(angle)
    pts = np.c_[cx + ca * x - sa * y, cy + sa * x + ca * y]
    pts[:, 0] = pts[:, 0].clip(0, WIDTH - 1)
    pts[:, 1] = pts[:, 1].clip(0, HEIGHT - 1)
    return np.round(pts, 1).tolist()


def generate(seed: int, lesions: list[str]) -> tuple[bytes, list[geometry.Lesion]]:
    """PNG bytes of one synthetic scan and its lesions (labels as given, possibly none)."""
    rng = np.random.default_rng(seed)
    h, w = HEIGHT, WIDTH
    y = np.linspace(0, 1, h, dtype=np.float32)[:, None]
    # Skin, subcutaneous fat, glandular tissue, pectoral muscle: brightness bands with wavy borders.
    waves = _smooth_noise(rng, h, w, 120) * 0.08
    tissue = np.where(y < 0.06 + waves * 0.3, 0.75, 0.0)
    tissue += np.where((y >= 0.06) & (y < 0.3 + waves), 0.35, 0.0)
    tissue += np.where((y >= 0.3 + waves) & (y < 0.7 + waves), 0.6, 0.0)
    tissue += np.where(y >= 0.7 + waves, 0.4, 0.0)
    tissue = tissue * (0.7 + 0.6 * _smooth_noise(rng, h, w, 40)) * (1.0 - 0.45 * y)  # depth attenuation
    outlines: list[geometry.Lesion] = []
    for label in lesions:
        malignant = label == geometry.MALIGNANT
        rx, ry = rng.uniform(35, 90), rng.uniform(25, 55)
        cx, cy = rng.uniform(150, w - 150), rng.uniform(h * 0.35, h * 0.65)
        pts = _outline(rng, cx, cy, rx, ry, rng.uniform(-0.4, 0.4), malignant)
        lesion = geometry.Lesion(label=label, points=pts)
        mask = geometry.lesion_mask(lesion, w, h).astype(bool)
        tissue[mask] = 0.06 if not malignant else 0.12
        # Posterior acoustic features below the lesion.
        # Strength follows the lesion's thickness per column and fades with depth.
        thickness = mask.sum(axis=0).astype(np.float32)
        profile = np.clip(thickness / max(thickness.max(), 1.0), 0, 1) ** 0.5
        bottom = int(np.nonzero(mask.any(axis=1))[0].max())
        fade = np.exp(-np.arange(h - bottom, dtype=np.float32) / (h * 0.35))[:, None]
        gain = (-0.55 if malignant else 0.35) * profile[None, :] * fade
        tissue[bottom:, :] *= 1.0 + gain
        outlines.append(lesion)
    # Speckle is spatially correlated (a blurred Rayleigh field), elongated laterally.
    speckle = cv2.GaussianBlur(rng.rayleigh(1.0, (h, w)).astype(np.float32), (0, 0), sigmaX=1.6, sigmaY=0.8)
    speckle = speckle / speckle.mean() * 0.9
    img = np.clip(tissue * speckle * 255, 0, 255).astype(np.uint8)
    # Typical scanner frame: black margins either side of the field of view.
    img[:, :40] = 0
    img[:, -40:] = 0
    buf = io.BytesIO()
    PIL.Image.fromarray(np.stack([img] * 3, axis=-1)).save(buf, format="PNG", compress_level=6)
    return buf.getvalue(), outlines
