"""Stored agreement (issue 10) in the app: the approval hook, ``recompute_agreement``, the
agreement page and the ``agreement`` export on a BUS-UCLM-size set, all 683 images reviewed.

    .venv/bin/python bench/agreement_store.py [--images 683] [--seed 0] [--json FILE]   # ~2 min

Database ``busreview_bench_agreement`` (recreated each run), DEBUG off. Data: the layer pairs of
``bench/agreement_metrics.py`` (856x606, 1-3 lesions per image with holes, the second layer a
perturbed copy: 10 % of lesions dropped, 10 % of images gain one, 10 % of labels flipped;
anisotropic spacing 0.06-0.12 mm) for every image, on 38 patients: the annotator draws and
submits the first layer through the workflow, the reviewer edits it into the second and approves
(``workflow.edit_and_approve``). Every image is one reviewed pair: "all pairs".

Measured, per image, interleaved:
- approval with the hook: ``edit_and_approve`` as the app runs it (even-numbered images), and
  of it the time in ``agreement_records.record`` (read both layers' lesions, compute, insert);
- approval without the hook (odd-numbered images, ``record`` replaced by a no-op): the floor of
  the approval itself;
- ``compare_layers`` alone on the same lesion lists in memory: the floor of the computation.
Then ``recompute_all`` over the 683 approvals (half the rows missing, half to rewrite), the
agreement page for a curator with 683 rows (median of 5 renders; the number of SQL queries, and
the same with 20 rows, filtered by one patient), and the ``agreement`` format's CSVs for 683 images.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import os  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from bench.agreement_metrics import H, W, make_pair  # noqa: E402
from bench.common import percentile, prepare_database, print_machine, wait_quiet, write_json  # noqa: E402

DB = "busreview_bench_agreement"
PATIENTS = 38


def ms(values: list[float]) -> dict[str, float]:
    return {
        "median": statistics.median(values) * 1e3,
        "p90": percentile(values, 90) * 1e3,
        "mean": statistics.fmean(values) * 1e3,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=683)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="write the raw figures to this file")
    args = parser.parse_args()

    print_machine()
    prepare_database(DB)
    os.environ["DEBUG"] = "0"  # no query log in memory
    from bench.common import django_setup

    django_setup(DB)
    import io
    import zipfile

    from django.contrib.auth.models import Group, User
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from annotator import agreement, agreement_records, permissions, workflow
    from annotator.exporting.agreement import AgreementFormat
    from annotator.models import Agreement, Image, ImageData, Patient

    permissions.ensure_role_groups()
    annotator = User.objects.create_user("bench-annotator")
    reviewer = User.objects.create_user("bench-reviewer")
    curator = User.objects.create_user("bench-curator")
    for user, role in ((annotator, "annotator"), (reviewer, "reviewer"), (curator, "curator")):
        user.groups.add(Group.objects.get(name=role))

    rng = np.random.default_rng(args.seed)
    pairs = [make_pair(rng) for _ in range(args.images)]
    spacings = [(float(rng.uniform(0.06, 0.12)), float(rng.uniform(0.06, 0.12))) for _ in pairs]
    ok, png = cv2.imencode(".png", np.zeros((H, W), dtype=np.uint8))
    codes = [f"{chr(65 + i // 26 % 26)}{chr(65 + i % 26)}QZ" for i in range(PATIENTS)]
    patients = [Patient.objects.create(code=c) for c in codes]
    images = []
    for i, (sx, sy) in enumerate(spacings):
        p = patients[i % PATIENTS]
        image = Image.objects.create(
            patient=p,
            name=f"{p.code}_{i:03d}.png",
            number=i,
            width=W,
            height=H,
            checksum=f"{i:064d}",
            annotator=annotator,
            pixel_spacing_x_mm=sx,
            pixel_spacing_y_mm=sy,
            pixel_spacing_mm=(sx * sy) ** 0.5,
        )
        ImageData.objects.create(image=image, png=png.tobytes())
        images.append(image)
    # The annotator's side, not measured.
    for image, (first, _second, _, _) in zip(images, pairs, strict=True):
        layer = workflow.start(image_id=image.pk, user=annotator)
        layer = workflow.save_draft(
            layer_id=layer.pk,
            user=annotator,
            content=workflow.LayerContent(lesions=first, is_normal=not first),
            expected_version=layer.version,
        )
        workflow.submit(layer_id=layer.pk, user=annotator)
    lesions = sum(len(p[0]) + len(p[1]) for p in pairs)
    print(f"{args.images} images {W}x{H} on {PATIENTS} patients, {lesions} lesions in both layers, submitted")

    real_record = agreement_records.record
    in_record: list[float] = []

    def timed_record(review, consensus):
        t = time.perf_counter()
        row = real_record(review, consensus)
        in_record.append(time.perf_counter() - t)
        return row

    load = wait_quiet()
    t_with, t_without, t_pure = [], [], []
    for i, (image, (first, second, _, _), (sx, sy)) in enumerate(zip(images, pairs, spacings, strict=True)):
        t0 = time.perf_counter()
        agreement.compare_layers(first, second, W, H, agreement.Spacing(sx, sy))
        t_pure.append(time.perf_counter() - t0)
        agreement_records.record = timed_record if i % 2 == 0 else (lambda review, consensus: None)
        content = workflow.LayerContent(lesions=second, is_normal=not second)
        t1 = time.perf_counter()
        workflow.edit_and_approve(image_id=image.pk, user=reviewer, content=content)
        (t_with if i % 2 == 0 else t_without).append(time.perf_counter() - t1)
    agreement_records.record = real_record
    stored = Agreement.objects.count()

    t0 = time.perf_counter()
    recomputed = agreement_records.recompute_all()
    t_recompute = time.perf_counter() - t0
    assert Agreement.objects.count() == args.images == recomputed

    client = Client(HTTP_HOST="localhost")
    client.force_login(curator)

    def render(url: str) -> tuple[float, int]:
        with CaptureQueriesContext(connection) as ctx:
            t = time.perf_counter()
            response = client.get(url)
            elapsed = time.perf_counter() - t
        assert response.status_code == 200, response.status_code
        return elapsed, len(ctx.captured_queries)

    render("/agreement/")  # warm-up: templates compiled
    full = [render("/agreement/") for _ in range(5)]
    one = [render(f"/agreement/?patient={codes[0]}") for _ in range(5)]

    fmt = AgreementFormat()
    fmt.names = [image.name for image in images]
    t0 = time.perf_counter()
    with zipfile.ZipFile(io.BytesIO(), "w") as zf:
        fmt.finish(zf)
    t_export = time.perf_counter() - t0

    rows = {
        "compare_layers alone (floor of the computation)": ms(t_pure),
        "approval without the hook (floor of the approval)": ms(t_without),
        "approval with the hook (as the app runs)": ms(t_with),
        "  of which agreement_records.record": ms(in_record),
    }
    print(f"background load before the run: {load:.0%}; rows stored by the hook: {stored}")
    print(f"{'ms per image':52s} {'median':>8s} {'p90':>8s} {'mean':>8s}")
    for name, r in rows.items():
        print(f"{name:52s} {r['median']:8.2f} {r['p90']:8.2f} {r['mean']:8.2f}")
    added = (
        rows["approval with the hook (as the app runs)"]["median"]
        - rows["approval without the hook (floor of the approval)"]["median"]
    )
    print(f"the hook adds {added:.2f} ms to a median approval")
    each = t_recompute / recomputed * 1e3
    print(f"recompute_agreement: {t_recompute:.2f} s for {recomputed} approvals, {each:.2f} ms each")
    page_full = statistics.median(t for t, _ in full) * 1e3
    page_one = statistics.median(t for t, _ in one) * 1e3
    print(f"agreement page, {args.images} rows: {page_full:.0f} ms median, {full[0][1]} queries")
    per = f"{args.images // PATIENTS}-{-(-args.images // PATIENTS)}"
    print(f"agreement page, one patient ({per} rows): {page_one:.0f} ms median, {one[0][1]} queries")
    print(f"agreement export CSVs for {args.images} images: {t_export * 1e3:.0f} ms")
    write_json(
        args.json,
        {
            "images": args.images,
            "load": load,
            "ms": rows,
            "recompute_s": t_recompute,
            "page_ms": page_full,
            "page_queries": full[0][1],
            "page_one_patient_ms": page_one,
            "page_one_patient_queries": one[0][1],
            "export_ms": t_export * 1e3,
        },
    )


if __name__ == "__main__":
    main()
