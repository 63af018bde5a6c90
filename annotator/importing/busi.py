"""BUSI (Al-Dhabyani et al. 2020, CC0): ``Dataset_BUSI_with_GT/{benign,malignant,normal}/``.

Each class folder holds ``benign (N).png`` and its mask ``benign (N)_mask.png``; an image with more
than one lesion has more masks, ``benign (N)_mask_1.png``, ``_mask_2.png``... Masks are binary
0/255 (often greyscale saved as RGB). The class comes from the folder and applies to every lesion
of the image; ``normal`` images have empty masks.

BUSI has no patient IDs (several images of one woman may be in it, but nothing says which), so
each image is its own pseudo-patient: grouping images by a guess (similar names, numbers) would
invent patients, and a split can only keep apart what the data identifies.

Known quirks, each reported: the same picture in two files (even two classes; kept once), masks
with values other than 0 and 255, masks larger or smaller than their image, a file whose name
says another class than its folder (the folder wins), a missing mask, a mask without an image.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

from .base import ImportReport, Source
from .public import Dataset, MaskFile, PublicImage, register

CLASSES = ("benign", "malignant", "normal")
# "benign (12).png", "benign (12)_mask.png", "benign (12)_mask_1.png" (case and spacing as published,
# tolerant of a missing space before the parenthesis)
FILE_RE = re.compile(r"^(?P<stem>(?P<cls>[a-z]+) ?\((?P<n>[0-9]+)\))(?P<mask>_mask(?:_(?P<k>[0-9]+))?)?\.png\Z", re.I)


def _in_class_folder(path: str) -> str | None:
    parts = PurePosixPath(path).parts
    if len(parts) >= 2 and parts[-2].lower() in CLASSES:
        return parts[-2].lower()
    return None


def recognise(source: Source) -> bool:
    return any(
        _in_class_folder(p) and (m := FILE_RE.match(PurePosixPath(p).name)) and m.group("mask") for p in source.files
    )


def read(source: Source, report: ImportReport) -> list[PublicImage]:
    images: dict[tuple[str, str], PublicImage] = {}
    masks: dict[tuple[str, str], list[tuple[int, str]]] = {}
    for path, loader in sorted(source.files.items()):
        folder_class = _in_class_folder(path)
        match = FILE_RE.match(PurePosixPath(path).name)
        if folder_class is None or match is None:
            report.defect(path, "not a BUSI image or mask (class/<class> (N).png, <class> (N)_mask.png)", "skipped")
            continue
        parent = str(PurePosixPath(path).parent)
        stem = match.group("stem")
        if match.group("mask"):
            k = int(match.group("k")) if match.group("k") else 0
            masks.setdefault((parent, stem.casefold()), []).append((k, path))
            continue
        name_class = match.group("cls").lower()
        if name_class != folder_class:
            report.defect(path, f"named {name_class} but in the {folder_class} folder", f"class {folder_class} used")
        images[(parent, stem.casefold())] = PublicImage(
            path=path,
            source_file=f"{folder_class}/{PurePosixPath(path).name}",
            loader=loader,
            patient=f"{folder_class}/{PurePosixPath(path).name}",  # no patient IDs: one pseudo-patient each
            label=folder_class,
            metadata={"class": folder_class},
        )
    for key in sorted(set(masks) - set(images)):
        for _, path in masks[key]:
            report.defect(path, "mask without an image", "skipped")
    for key, record in images.items():
        found = sorted(masks.get(key, []))
        record.masks = [MaskFile(path, source.files[path]) for _, path in found]
        record.metadata["mask_files"] = [PurePosixPath(path).name for _, path in found]
        if not found and record.label == "normal":
            report.defect(record.path, "no mask file", "class normal from the folder: imported as a normal image")
    # In the release's order: class folder, then the number (natural order, not "10" before "2").
    return [images[k] for k in sorted(images, key=lambda k: (k[0], int(FILE_RE.match(k[1] + ".png")["n"])))]


DATASET = register(Dataset(key="busi", title="BUSI", licence="CC0-1.0", read=read, recognise=recognise))
