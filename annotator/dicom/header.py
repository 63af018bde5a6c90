"""What may leave the DICOM layer besides pixels: an allow-listed summary, keyed hashes, an order.

De-identification by construction: `header_summary` copies named attributes that identify no one,
each validated to the shape the standard gives it (so a name typed into a coded field is not
copied either); everything else in the file, including every name, ID, date, time, institution,
physician, UID, free text and private tag, is never read into the summary. The patient and the
SOP instance leave only as HMAC-SHA256 digests keyed with a secret held outside the database, so
a dump of the database alone cannot be reversed or confirmed by guessing IDs. Dates and times are
read for one purpose, ordering a patient's images in acquisition order, and only as an opaque
sort key that the caller compares and discards.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import string
from dataclasses import dataclass, field

from pydicom.dataset import Dataset
from pydicom.uid import UID

from .calibration import calibration, regions
from .errors import DICOM_UID_ROOT, modality_label, quiet, transfer_syntax_name
from .pixels import key_frame_index
from .reading import frame_count

_PHOTOMETRIC = {
    "MONOCHROME1",
    "MONOCHROME2",
    "PALETTE COLOR",
    "RGB",
    "YBR_FULL",
    "YBR_FULL_422",
    "YBR_PARTIAL_420",
    "YBR_ICT",
    "YBR_RCT",
}
_LATERALITY = {"L", "R", "B", "U"}
# Manufacturer and model are free text (LO); keep a plain, short form.
_TEXT_RE = re.compile(r"[^A-Za-z0-9 .,_+()/-]")
_TEXT_MAX = 64
MIN_SECRET_BYTES = 16


def _text(value: object) -> str:
    return _TEXT_RE.sub("", str(value or "")).strip()[:_TEXT_MAX]


def _coded(value: object, allowed: set[str]) -> str:
    text = str(value or "").strip().upper()
    return text if text in allowed else ""


def header_summary(ds: Dataset, *, frame_index: int | None = None) -> dict[str, object]:
    """The allow-listed, non-identifying header values to store with an image.

    `frame_index` is the 0-based frame imported (default: the key frame). Keys are always present;
    missing values are "" or None.
    """
    with quiet():  # reading a malformed value makes pydicom warn with the value in the message
        return _summary(ds, key_frame_index(ds) if frame_index is None else frame_index)


def _summary(ds: Dataset, frame: int) -> dict[str, object]:
    sop_class = str(ds.get("SOPClassUID") or "")
    summary: dict[str, object] = {
        "modality": modality_label(ds.get("Modality")) if ds.get("Modality") else "",
        "sop_class": UID(sop_class).name if sop_class.startswith(DICOM_UID_ROOT) else "",
        "manufacturer": _text(ds.get("Manufacturer")),
        "manufacturer_model": _text(ds.get("ManufacturerModelName")),
        "laterality": _coded(ds.get("ImageLaterality"), _LATERALITY) or _coded(ds.get("Laterality"), _LATERALITY),
        "photometric_interpretation": _coded(ds.get("PhotometricInterpretation"), _PHOTOMETRIC),
        "transfer_syntax": transfer_syntax_name(str(ds.file_meta.get("TransferSyntaxUID") or "")),
        "rows": int(ds.get("Rows") or 0),
        "columns": int(ds.get("Columns") or 0),
        "bits_stored": int(ds.get("BitsStored") or 0),
        "frame_count": frame_count(ds),
        "frame_index": frame,
        "regions": [r.as_dict() for r in regions(ds)],
    }
    summary.update(calibration(ds).as_dict())
    return summary


# --- keyed identities ---------------------------------------------------------------------------


def _clean(value: object) -> str:
    return " ".join(str(value or "").split())


def _person_name(value: object) -> str:
    """PN normalised: case, spacing and trailing empty components ("DOE^JANE^^" = "doe^jane")."""
    groups = str(value or "").split("=")[0]  # the alphabetic group; ideographic ones vary by export
    parts = [_clean(part).upper() for part in groups.split("^")]
    while parts and not parts[-1]:
        parts.pop()
    return "^".join(parts)


def _hmac(secret: bytes, purpose: str, *parts: str) -> str:
    if not isinstance(secret, bytes | bytearray) or len(secret) < MIN_SECRET_BYTES:
        raise ValueError(f"The DICOM identity key must be at least {MIN_SECRET_BYTES} bytes.")
    message = "\x1f".join((purpose, *parts)).encode("utf-8")
    return hmac.new(bytes(secret), message, hashlib.sha256).hexdigest()


def patient_key(ds: Dataset, secret: bytes) -> str | None:
    """HMAC-SHA256 (hex) of the source patient's identity, or None when the file carries none.

    Identity: Patient ID with Issuer of Patient ID when present (the same ID from two hospitals is
    two patients). Without a Patient ID: Patient's Name with Patient's Birth Date, both required,
    since a name alone joins namesakes. None means no identity to match on: the caller treats the
    file as a new patient. The secret stays outside the database (settings/environment).
    """
    with quiet():
        patient_id, issuer = _clean(ds.get("PatientID")), _clean(ds.get("IssuerOfPatientID"))
        name, birth = _person_name(ds.get("PatientName")), _clean(ds.get("PatientBirthDate"))
    if patient_id:
        return _hmac(secret, "patient-id", patient_id, issuer)
    if name and birth:
        return _hmac(secret, "patient-name", name, birth)
    return None


def instance_key(ds: Dataset, secret: bytes) -> str | None:
    """HMAC-SHA256 (hex) of the SOP Instance UID: recognises a file imported twice without storing its UID."""
    with quiet():
        uid = _clean(ds.get("SOPInstanceUID"))
    return _hmac(secret, "sop-instance", uid) if uid else None


CODE_LETTERS = string.ascii_uppercase
CODE_LENGTH = 4
_MAX_CODE_ATTEMPTS = 10_000


def _letters(digest: bytes) -> str:
    number = int.from_bytes(digest[:8], "big")
    letters = []
    for _ in range(CODE_LENGTH):
        number, rest = divmod(number, len(CODE_LETTERS))
        letters.append(CODE_LETTERS[rest])
    return "".join(letters)


def patient_code(key_hex: str, taken: set[str]) -> str:
    """A BUS-UCLM-style code (four capital letters) derived from a patient key, avoiding `taken`.

    Deterministic: the same key and the same taken codes give the same code. On a collision the
    next candidate is derived from the key and an attempt counter. The code depends on `taken`,
    so the caller stores the key with the code it got and looks the key up first on re-import.
    Fails (ValueError) only if thousands of candidates are all taken.
    """
    seed = bytes.fromhex(key_hex) if re.fullmatch(r"[0-9a-fA-F]{16,}", key_hex or "") else key_hex.encode()
    for attempt in range(_MAX_CODE_ATTEMPTS):
        digest = hashlib.sha256(seed + attempt.to_bytes(4, "big")).digest()
        code = _letters(digest)
        if code not in taken:
            return code
    raise ValueError("No free patient code was found; the code space is nearly full.")


# --- acquisition order --------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class AcquisitionOrder:
    """Sort key for numbering a patient's images. Holds a date in memory: compare it, never store it.

    Its repr and str show nothing, so logging it by mistake leaks nothing.
    """

    _key: tuple = field(repr=False)

    def __repr__(self) -> str:
        return "AcquisitionOrder(<hidden>)"

    __str__ = __repr__


def _digits(value: object, width: int) -> str:
    text = re.sub(r"[^0-9]", "", str(value or "").split(".")[0].split("+")[0].split("-")[0])
    return text[:width]


def _datetime_digits(date: object, time: object) -> str:
    """YYYYMMDDHHMMSSffffff, zero-padded, or "" without a valid date."""
    day = _digits(date, 8)
    if len(day) != 8:
        return ""
    clock = _digits(time, 6).ljust(6, "0")
    fraction = str(time or "").partition(".")[2]
    fraction = re.sub(r"[^0-9]", "", fraction)[:6].ljust(6, "0")
    return day + clock + fraction


def acquisition_order(ds: Dataset) -> AcquisitionOrder:
    """When the image was acquired, for ordering only: Acquisition DateTime, else Acquisition Date and
    Time, else Content Date and Time, else Series/Study; then Instance Number. Files without a date
    sort after those with one, by Instance Number."""
    with quiet():
        return _acquisition_order(ds)


def _acquisition_order(ds: Dataset) -> AcquisitionOrder:
    stamp = ""
    acquisition_dt = str(ds.get("AcquisitionDateTime") or "")
    if acquisition_dt:
        stamp = _datetime_digits(acquisition_dt[:8], acquisition_dt[8:])
    for date_kw, time_kw in (
        ("AcquisitionDate", "AcquisitionTime"),
        ("ContentDate", "ContentTime"),
        ("SeriesDate", "SeriesTime"),
        ("StudyDate", "StudyTime"),
    ):
        if stamp:
            break
        stamp = _datetime_digits(ds.get(date_kw), ds.get(time_kw))
    try:
        instance = int(ds.get("InstanceNumber") or 0)
    except (TypeError, ValueError):
        instance = 0
    return AcquisitionOrder((0 if stamp else 1, stamp, instance))
