"""Benchmark data: a BUS-UCLM-sized folder of generated scans, and a bulk-inserted large dataset.

``uclm_folder(683)`` writes ``images/``, ``masks/`` and ``INFO.csv`` in the BUS-UCLM layout from
``annotator.demo.generate`` (synthetic speckle scans of 856x606, never real data), with the
release's label mix (419 normal, 174 benign, 90 malignant, a few images with two lesions: ~280
lesions). It is cached under ``$BENCH_CACHE`` (default /tmp/busreview-bench) and reused.

``insert_approved(n, pool)`` creates ``n`` approved images directly in the database (bulk
inserts, bypassing the import, which would take far longer for 10,000 images): the rows the
import would have written (Patient, Image, ImageData, MaskLayer approved and set as the image's
consensus, Lesion with the outlines and pixel areas that the import extracts from each mask, an
AuditEvent), cycling over the pool's distinct scans under new names.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import random
import string
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from bench.common import CACHE

# BUS-UCLM (Vallez et al. 2025): 683 images of 38 patients; 419 normal, 174 benign, 90 malignant.
UCLM = {"images": 683, "patients": 38, "normal": 419, "benign": 174, "malignant": 90}
SECOND_LESION_P = 0.06  # share of abnormal images with a second (benign) lesion: ~280 lesions in all


@dataclass
class Planned:
    name: str
    seed: int
    labels: list[str]
    doppler: bool
    marks: bool
    combined: bool


def _codes(rng: random.Random, count: int) -> list[str]:
    codes: set[str] = set()
    while len(codes) < count:
        codes.add("".join(rng.choice(string.ascii_uppercase) for _ in range(4)))
    return sorted(codes)


def plan(n: int, seed: int) -> list[Planned]:
    rng = random.Random(seed)
    scale = n / UCLM["images"]
    benign = round(UCLM["benign"] * scale)
    malignant = round(UCLM["malignant"] * scale)
    kinds = ["benign"] * benign + ["malignant"] * malignant + ["normal"] * (n - benign - malignant)
    rng.shuffle(kinds)
    patients = _codes(rng, max(1, round(UCLM["patients"] * scale)))
    per_patient = math.ceil(n / len(patients))
    out = []
    for i, kind in enumerate(kinds):
        labels = [] if kind == "normal" else [kind]
        if labels and rng.random() < SECOND_LESION_P:
            labels.append("benign")
        code = patients[i // per_patient]
        out.append(
            Planned(
                name=f"{code}_{i % per_patient:03d}.png",
                seed=seed * 100_000 + i,
                labels=labels,
                doppler=rng.random() < 0.10,
                marks=rng.random() < 0.25,
                combined=rng.random() < 0.05,
            )
        )
    return out


def _render(item: Planned) -> tuple[str, bytes, bytes, str]:
    """One scan: (name, image PNG, mask PNG, label read back from the mask as the import will)."""
    import cv2

    from annotator import demo, geometry

    png, lesions = demo.generate(item.seed, item.labels)
    rgb = geometry.rasterise(lesions, demo.WIDTH, demo.HEIGHT)
    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert ok
    label = geometry.label_of(geometry.extract_lesions(rgb).lesions)
    return item.name, png, buf.tobytes(), label


def uclm_folder(n: int = UCLM["images"], seed: int = 2026, workers: int = 2) -> Path:
    """The cached BUS-UCLM-layout folder of ``n`` generated scans (generated on first use)."""
    folder = CACHE / f"uclm-{n}-seed{seed}"
    if (folder / ".complete").exists():
        return folder
    started = time.perf_counter()
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "masks").mkdir(parents=True, exist_ok=True)
    items = plan(n, seed)
    by_name = {item.name: item for item in items}
    rows = []
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for name, png, mask, label in pool.map(_render, items, chunksize=8):
            (folder / "images" / name).write_bytes(png)
            (folder / "masks" / name).write_bytes(mask)
            item = by_name[name]
            yn = {True: "Yes", False: "No"}
            rows.append([name, "856x606", label, yn[item.doppler], yn[item.marks], yn[item.combined]])
    text = io.StringIO()
    writer = csv.writer(text, delimiter=";", lineterminator="\n")
    writer.writerow(["Image", "Resolution", "Label", "Doppler", "Marks", "Combined"])
    writer.writerows(sorted(rows))
    (folder / "INFO.csv").write_bytes("\ufeff".encode() + text.getvalue().encode())
    (folder / ".complete").write_text("ok\n")
    print(f"generated {n} scans in {folder} in {time.perf_counter() - started:.0f} s")
    return folder


@dataclass
class PoolItem:
    png: bytes
    checksum: str
    width: int
    height: int
    lesions: list  # geometry.Lesion, as the import extracts them from the mask
    areas: list[int]


def load_pool(folder: Path, limit: int | None = None) -> list[PoolItem]:
    """Scans and their lesions (extracted from the masks exactly as the import does)."""
    import cv2
    import numpy as np

    from annotator import geometry

    pool = []
    for path in sorted((folder / "images").glob("*.png"))[:limit]:
        png = path.read_bytes()
        mask = cv2.imdecode(np.frombuffer((folder / "masks" / path.name).read_bytes(), np.uint8), cv2.IMREAD_COLOR)
        rgb = cv2.cvtColor(mask, cv2.COLOR_BGR2RGB)
        h, w = rgb.shape[:2]
        lesions = geometry.extract_lesions(rgb).lesions
        pool.append(
            PoolItem(
                png=png,
                checksum=hashlib.sha256(png).hexdigest(),
                width=w,
                height=h,
                lesions=lesions,
                areas=[geometry.pixel_area(les, w, h) for les in lesions],
            )
        )
    return pool


def insert_approved(n: int, pool: list[PoolItem], seed: int = 10_000, batch: int = 250) -> None:
    """Bulk-create ``n`` approved images with consensus layers (Django must be set up)."""
    from django.db import connection, transaction

    from annotator import importing
    from annotator.models import AuditEvent, Image, ImageData, LayerStatus, Lesion, MaskLayer, Patient, Status

    started = time.perf_counter()
    importer = importing.importer_user()
    items = plan(n, seed)
    codes = sorted({item.name[:4] for item in items})
    Patient.objects.bulk_create([Patient(code=c) for c in codes])
    patients = dict(Patient.objects.filter(code__in=codes).values_list("code", "pk"))
    for start in range(0, n, batch):
        chunk = items[start : start + batch]
        sources = [pool[(start + k) % len(pool)] for k in range(len(chunk))]
        with transaction.atomic():
            images = Image.objects.bulk_create(
                [
                    Image(
                        patient_id=patients[item.name[:4]],
                        name=item.name,
                        number=int(item.name[5:8]),
                        width=src.width,
                        height=src.height,
                        checksum=src.checksum,
                        doppler=item.doppler,
                        marks=item.marks,
                        combined=item.combined,
                    )
                    for item, src in zip(chunk, sources, strict=True)
                ]
            )
            ImageData.objects.bulk_create(
                [ImageData(image=img, png=src.png) for img, src in zip(images, sources, strict=True)], batch_size=25
            )
            layers = MaskLayer.objects.bulk_create(
                [
                    MaskLayer(
                        image=img,
                        author=importer,
                        revision=1,
                        source=MaskLayer.Source.IMPORTED,
                        status=LayerStatus.APPROVED,
                        is_normal=not src.lesions,
                        doppler=img.doppler,
                        marks=img.marks,
                        combined=img.combined,
                    )
                    for img, src in zip(images, sources, strict=True)
                ]
            )
            Lesion.objects.bulk_create(
                [
                    Lesion(layer=layer, index=i, label=les.label, points=les.points, holes=les.holes, area_px=area)
                    for layer, src in zip(layers, sources, strict=True)
                    for i, (les, area) in enumerate(zip(src.lesions, src.areas, strict=True))
                ],
                batch_size=500,
            )
            with connection.cursor() as cur:
                cur.execute(
                    "UPDATE annotator_image i SET consensus_id = l.id, status = %s FROM annotator_masklayer l"
                    " WHERE l.image_id = i.id AND i.id = ANY(%s)",
                    [Status.APPROVED, [img.pk for img in images]],
                )
            AuditEvent.objects.bulk_create(
                [
                    AuditEvent(
                        actor=importer,
                        image=img,
                        layer=layer,
                        action="import",
                        from_status=Status.NEW,
                        to_status=Status.APPROVED,
                        detail={"checksum": img.checksum},
                    )
                    for img, layer in zip(images, layers, strict=True)
                ]
            )
    with connection.cursor() as cur:
        cur.execute("ANALYZE")
    print(f"inserted {n} approved images in {time.perf_counter() - started:.0f} s")
