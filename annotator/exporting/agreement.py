"""Reader agreement: ``agreement.csv`` (one row per reviewed layer pair of each exported image) and
``agreement_lesions.csv`` (one row per matched, missed or added lesion); same CSV conventions as
INFO.csv (``;``, UTF-8 with BOM, LF). The figures are the stored ``Agreement`` rows (computed on
approval, see ``annotator.agreement_records``); readers appear as ``R01``, ``R02``..., never by name.
"""

from __future__ import annotations

import zipfile

from annotator.exporting.base import ExportRecord, register
from annotator.models import Agreement, Lesion

HEADER = [
    "Image",
    "Patient",
    "Round",
    "Decided",
    "Decision",
    "Pair",
    "FirstReader",
    "SecondReader",
    "FirstLabel",
    "SecondLabel",
    "NormalLesionDisagreement",
    "Dice",
    "IoU",
    "BenignDice",
    "BenignIoU",
    "MalignantDice",
    "MalignantIoU",
    "Hausdorff",
    "HD95",
    "ASSD",
    "Unit",
    "SpacingX",
    "SpacingY",
    "LesionsMatched",
    "LesionsAdded",
    "LesionsMissed",
    "LabelFlips",
]
LESION_HEADER = [
    "Image",
    "Round",
    "FirstReader",
    "SecondReader",
    "Pair",
    "Outcome",
    "FirstLesion",
    "SecondLesion",
    "FirstLabel",
    "SecondLabel",
    "LabelFlip",
    "IoU",
    "Dice",
    "Hausdorff",
    "HD95",
    "ASSD",
    "Unit",
]
LABEL = {"benign": "Benign", "malignant": "Malignant"}


def number(value) -> str:
    """Full precision (Python's shortest round-trip repr), empty when undefined."""
    return "" if value is None else repr(float(value))


def yes_no(value: bool) -> str:
    return "Yes" if value else "No"


def csv_bytes(header: list[str], rows: list[list[str]]) -> bytes:
    text = "\n".join(";".join(row) for row in [header, *rows]) + "\n"
    return "\ufeff".encode() + text.encode("utf-8")


def reader_codes() -> dict[int, str]:
    """user id -> ``R01``...: readers numbered by account age among every reader on record, so a
    reader keeps their code across exports of different patients."""
    ids = set(Agreement.objects.values_list("first_reader_id", flat=True).distinct())
    ids |= set(Agreement.objects.values_list("second_reader_id", flat=True).distinct())
    return {pk: f"R{n:02d}" for n, pk in enumerate(sorted(ids), start=1)}


@register
class AgreementFormat:
    key = "agreement"

    def __init__(self) -> None:
        self.names: list[str] = []

    def add(self, zf: zipfile.ZipFile, record: ExportRecord) -> None:
        self.names.append(record.name)

    def finish(self, zf: zipfile.ZipFile) -> None:
        rows = list(
            Agreement.objects.filter(image__name__in=self.names)
            .select_related("image__patient", "review")
            .order_by("image__name", "decided_at", "pk")
        )
        codes = reader_codes()
        labels = {
            (layer, index): label
            for layer, index, label in Lesion.objects.filter(
                layer_id__in={r.first_layer_id for r in rows} | {r.second_layer_id for r in rows}
            ).values_list("layer_id", "index", "label")
        }
        pairs, lesions = [], []
        for r in rows:
            a, b = codes[r.first_reader_id], codes[r.second_reader_id]
            benign, malignant = r.per_label.get("benign", {}), r.per_label.get("malignant", {})
            pairs.append(
                [
                    r.image.name,
                    r.image.patient.code,
                    str(r.round),
                    r.decided_at.strftime("%Y-%m-%d"),
                    r.review.decision,
                    r.kind,
                    a,
                    b,
                    r.first_label,
                    r.second_label,
                    yes_no(r.normal_lesion_disagreement),
                    number(r.dice),
                    number(r.iou),
                    number(benign.get("dice")),
                    number(benign.get("iou")),
                    number(malignant.get("dice")),
                    number(malignant.get("iou")),
                    number(r.hausdorff),
                    number(r.hd95),
                    number(r.assd),
                    r.unit,
                    number(r.spacing_x_mm),
                    number(r.spacing_y_mm),
                    str(r.lesions_matched),
                    str(r.lesions_added),
                    str(r.lesions_missed),
                    str(r.label_flips),
                ]
            )
            head = [r.image.name, str(r.round), a, b, r.kind]
            for m in r.matches:
                lesions.append(
                    [
                        *head,
                        "matched",
                        str(m["first"]),
                        str(m["second"]),
                        LABEL[m["first_label"]],
                        LABEL[m["second_label"]],
                        yes_no(m["label_flip"]),
                        number(m["iou"]),
                        number(m["dice"]),
                        number(m["hausdorff"]),
                        number(m["hd95"]),
                        number(m["assd"]),
                        m["unit"],
                    ]
                )
            for i in r.missed:
                label = LABEL.get(labels.get((r.first_layer_id, i), ""), "")
                lesions.append([*head, "missed", str(i), "", label, "", "", "", "", "", "", "", r.unit])
            for j in r.added:
                label = LABEL.get(labels.get((r.second_layer_id, j), ""), "")
                lesions.append([*head, "added", "", str(j), "", label, "", "", "", "", "", "", r.unit])
        zf.writestr("agreement.csv", csv_bytes(HEADER, pairs))
        zf.writestr("agreement_lesions.csv", csv_bytes(LESION_HEADER, lesions))
