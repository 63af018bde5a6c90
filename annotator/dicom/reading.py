"""Recognising and opening DICOM files from bytes, refusing what the importer must not take.

Nothing here decodes pixels: every check reads the header, so a decompression bomb or a file of
the wrong kind is refused before any work is spent on it.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterable
from io import BytesIO

import pydicom
from pydicom.dataset import Dataset
from pydicom.filereader import _read_file_meta_info, read_preamble
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    MediaStorageDirectoryStorage,
)

from .errors import DICOM_UID_ROOT, DicomError, modality_label, quiet
from .pixels import check_decodable

# Defaults for the header checks; the caller passes its own from settings. A 120-frame 1024 x 768
# cine is 94 M pixels, so the default total admits real cine loops and refuses claims of gigapixels.
DEFAULT_MAX_PIXELS = 200_000_000
DEFAULT_MAX_FRAMES = 2_000

# Ultrasound storage classes: a file of one of these without (0008,0060) Modality is still US.
_US_SOP_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.6.1",  # Ultrasound Image Storage
    "1.2.840.10008.5.1.4.1.1.3.1",  # Ultrasound Multi-frame Image Storage
    "1.2.840.10008.5.1.4.1.1.6",  # Ultrasound Image Storage (retired)
    "1.2.840.10008.5.1.4.1.1.3",  # Ultrasound Multi-frame Image Storage (retired)
}

# --- recognising --------------------------------------------------------------------------------


def is_dicom(data: bytes) -> bool:
    """True for a DICOM Part 10 file ('DICM' after the 128-byte preamble) or a bare dataset.

    A bare dataset (no preamble, as old scanners and some PACS exports write) must start with a
    group 0002 or 0008 tag, in either byte order, and parse, under pydicom's forced read, into
    a dataset with a SOP Class UID. PNG, JPEG, ZIP and text files start with other bytes.
    """
    if len(data) >= 132 and data[128:132] == b"DICM":
        return True
    if len(data) < 16:
        return False
    group_le = struct.unpack("<H", data[:2])[0]
    group_be = struct.unpack(">H", data[:2])[0]
    if group_le not in (0x0002, 0x0008) and group_be not in (0x0002, 0x0008):
        return False
    try:
        with quiet():
            ds = pydicom.dcmread(BytesIO(data), force=True, stop_before_pixels=True)
            sop_class = str(ds.get("SOPClassUID", "") or "")
    except Exception:
        return False
    return bool(re.fullmatch(r"[0-9]+(\.[0-9]+)+", sop_class))


# --- opening and checking -----------------------------------------------------------------------


def _meta_transfer_syntax(data: bytes) -> str | None:
    """The transfer syntax from the file meta, read without parsing (or inflating) the dataset."""
    if data[128:132] != b"DICM":
        return None
    try:
        fp = BytesIO(data)
        with quiet():
            read_preamble(fp, False)
            meta = _read_file_meta_info(fp)
        return str(meta.get("TransferSyntaxUID", "") or "") or None
    except Exception:
        return None


def read_dicom(
    data: bytes,
    *,
    allow_modalities: Iterable[str] = (),
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_frames: int = DEFAULT_MAX_FRAMES,
) -> Dataset:
    """Open a DICOM file from bytes and check it can become images, without decoding any pixels.

    Refuses (DicomError): not DICOM; a deflated dataset (inflating it is unbounded); a DICOMDIR;
    no Pixel Data (SR, KO, presentation states...); a modality other than US unless listed in
    `allow_modalities`; an impossible image geometry; more than `max_frames` frames or more than
    `max_pixels` pixels in all frames together (rows x columns x frames, read from the header, so
    a decompression bomb is refused before it is decoded); a file cut before or inside its pixel
    data; a transfer syntax without a permissively licensed decoder here. Compressed frames that
    are damaged are refused when decoded (`decode_frame`), since checking them means decoding.
    """
    if not is_dicom(data):
        raise DicomError("not_dicom", "This is not a DICOM file.")
    if _meta_transfer_syntax(data) == DeflatedExplicitVRLittleEndian:
        raise DicomError(
            "unsupported_transfer_syntax",
            f"Unsupported transfer syntax: {DeflatedExplicitVRLittleEndian.name} (the whole dataset "
            "is compressed and cannot be checked before it is inflated).",
        )
    try:
        with quiet():
            ds = pydicom.dcmread(BytesIO(data), force=True)
            # Elements are parsed lazily; touch the ones checked below so a damaged header fails here.
            for keyword in ("SOPClassUID", "Modality", "Rows", "Columns", "NumberOfFrames", "PixelData"):
                ds.get(keyword)
    except Exception:
        raise DicomError("unreadable", "The DICOM file is damaged or truncated and cannot be read.") from None
    _fill_bare_transfer_syntax(ds)
    _check_kind(ds, data)
    _check_modality(ds, allow_modalities)
    _check_geometry(ds, max_pixels=max_pixels, max_frames=max_frames)
    check_decodable(ds)
    _check_pixel_data_length(ds)
    return ds


def _fill_bare_transfer_syntax(ds: Dataset) -> None:
    """A bare dataset has no file meta; the decoders need the encoding pydicom detected."""
    if "TransferSyntaxUID" in ds.file_meta:
        return
    implicit, little = ds.original_encoding
    if implicit or implicit is None:
        ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    else:
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian if little else ExplicitVRBigEndian


# The (7FE0,0010) Pixel Data tag, little or big endian.
_PIXEL_DATA_TAGS = re.compile(rb"\xe0\x7f\x10\x00|\x7f\xe0\x00\x10")


def _sop_class(ds: Dataset) -> str:
    meta = getattr(ds, "file_meta", None)
    value = ds.get("SOPClassUID") or (meta.get("MediaStorageSOPClassUID") if meta is not None else None)
    return str(value or "")


def _check_kind(ds: Dataset, data: bytes) -> None:
    meta_class = str(ds.file_meta.get("MediaStorageSOPClassUID") or "")
    if MediaStorageDirectoryStorage in (meta_class, _sop_class(ds)) or "DirectoryRecordSequence" in ds:
        raise DicomError("dicomdir", "This is a DICOMDIR (an index of a DICOM media), not an image.")
    if "PixelData" in ds:
        return
    sop_class = _sop_class(ds)
    if not sop_class:
        raise DicomError("unreadable", "The DICOM file is damaged: it has no readable dataset (no SOP Class).")
    kind = UID(sop_class).name if sop_class.startswith(DICOM_UID_ROOT) else ""
    # pydicom stops quietly at the end of a cut file, dropping an incomplete Pixel Data element:
    # an image class without pixels, or a Pixel Data tag in the bytes, means the file is truncated.
    if kind.endswith("Image Storage") or _PIXEL_DATA_TAGS.search(data):
        raise DicomError("truncated", "The file ends before its pixel data is complete: it is truncated.")
    raise DicomError(
        "no_pixel_data",
        f"{kind or 'This object'} has no Pixel Data: structured reports, key object selections and "
        "presentation states hold no image to import.",
    )


def _check_modality(ds: Dataset, allow_modalities: Iterable[str]) -> None:
    allowed = {"US"} | {str(m).strip().upper() for m in allow_modalities}
    modality = str(ds.get("Modality", "") or "").strip().upper()
    if not modality and _sop_class(ds) in _US_SOP_CLASSES:
        modality = "US"
    if modality not in allowed:
        shown = modality_label(modality) if modality else "missing"
        raise DicomError(
            "modality",
            f"Modality {shown} is not ultrasound (US); it is refused unless the curator allows it explicitly.",
        )


def _int(ds: Dataset, keyword: str, default: int | None = None) -> int | None:
    value = ds.get(keyword, default)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def frame_count(ds: Dataset) -> int:
    """Number of frames (1 when the header does not say)."""
    value = _int(ds, "NumberOfFrames", 1)
    return value if value and value > 0 else 1


def _check_geometry(ds: Dataset, *, max_pixels: int, max_frames: int) -> None:
    rows, columns = _int(ds, "Rows"), _int(ds, "Columns")
    samples, bits = _int(ds, "SamplesPerPixel", 1), _int(ds, "BitsAllocated")
    frames = _int(ds, "NumberOfFrames", 1)
    if not rows or not columns or rows < 1 or columns < 1 or samples not in (1, 3) or bits not in (1, 8, 16, 32):
        raise DicomError("geometry", "The image header is incomplete or invalid (rows, columns, samples or bits).")
    if frames is None or frames < 0:
        raise DicomError("geometry", "The image header has an invalid Number of Frames.")
    frames = max(frames, 1)
    if frames > max_frames:
        raise DicomError("too_many_frames", f"The file has {frames} frames; the limit is {max_frames}.")
    total = rows * columns * frames
    if total > max_pixels:
        raise DicomError(
            "too_large",
            f"The file declares {columns} x {rows} pixels x {frames} frames ({total} pixels); the limit is "
            f"{max_pixels}.",
        )


def _check_pixel_data_length(ds: Dataset) -> None:
    """Truncated native data is refused before decoding; truncated fragments fail at decode time."""
    if ds.file_meta.TransferSyntaxUID.is_encapsulated:
        return
    with quiet():
        expected = pydicom.pixels.utils.get_expected_length(ds, unit="bytes")
    actual = len(ds.PixelData or b"")
    if actual < expected:
        raise DicomError(
            "truncated", f"The pixel data is truncated ({actual} of {expected} bytes); the file is incomplete."
        )
