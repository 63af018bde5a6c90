"""Patient-level cross-validation folds: ``splits.csv`` (``Image;Patient;Fold``).

Images of one patient never straddle folds (their scans are correlated). Patients are dealt,
largest first, to the fold with the fewest images so far: deterministic and balanced.

In a mixed dataset each source (a public dataset, or BUS Review's own images) is dealt on its
own, so every fold holds its share of every source; patients of two sources are never merged
(their codes come from the dataset and the source's patient: importing.public).
"""

from __future__ import annotations

import zipfile
from collections import defaultdict

from annotator.exporting.base import ExportRecord, register

FOLDS = 5


def assign_folds(images_per_patient: dict[str, int], folds: int = FOLDS) -> dict[str, int]:
    load = [0] * folds
    assignment = {}
    for patient, count in sorted(images_per_patient.items(), key=lambda item: (-item[1], item[0])):
        fold = min(range(folds), key=lambda f: (load[f], f))
        assignment[patient] = fold
        load[fold] += count
    return assignment


@register
class SplitsFormat:
    key = "splits"

    def __init__(self) -> None:
        self.names: dict[str, list[str]] = defaultdict(list)
        self.patients: dict[str, dict[str, int]] = defaultdict(dict)  # source -> patient -> images

    def add(self, zf: zipfile.ZipFile, record: ExportRecord) -> None:
        patient = record.name[:4]
        self.names[patient].append(record.name)
        counts = self.patients[record.source_dataset]
        counts[patient] = counts.get(patient, 0) + 1

    def finish(self, zf: zipfile.ZipFile) -> None:
        folds: dict[str, int] = {}
        for source in sorted(self.patients):
            folds.update(assign_folds(self.patients[source]))
        rows = sorted(
            f"{name};{patient};{folds[patient] + 1}" for patient, names in self.names.items() for name in names
        )
        zf.writestr("splits.csv", "\n".join(["Image;Patient;Fold", *rows]) + "\n")
