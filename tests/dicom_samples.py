"""DICOM test data: the real files pip packages ship, and synthetic files built with pydicom.

Real files come from pydicom's own test files and the pydicom-data wheel (MIT, a dev requirement);
nothing is downloaded at run time. Synthetic files carry known identifying strings in every
place they hide, so tests can search any output for them.
"""

from __future__ import annotations

from io import BytesIO
from pathlib import Path

import numpy as np
import pydicom
from pydicom import examples
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian

US_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.6.1"
US_MULTIFRAME_STORAGE = "1.2.840.10008.5.1.4.1.1.3.1"


def testdata_path(name: str) -> Path:
    """A file from pydicom's test files or the installed pydicom-data wheel; never downloads."""
    path = get_testdata_file(name, download=False)
    assert path, f"{name} is missing: install requirements-dev.txt (pydicom-data)"
    return Path(path)


def shipped_file(name: str) -> bytes:
    return testdata_path(name).read_bytes()


def example(name: str) -> bytes:
    """A dataset of pydicom.examples ('ybr_color', 'palette_color', ...) as file bytes."""
    return Path(examples.get_path(name)).read_bytes()


# --- identifying strings and where they hide ----------------------------------------------------

PATIENT_NAME = "Zyqwertson^Quirinalda^Maribel"
PATIENT_ID = "PID8675309QX"
ISSUER = "ISSUER-HOSP-QX77"
OTHER_ID = "OPID4412ZZQ"
OTHER_SEQ_ID = "OPIDSEQ7781Q"
BIRTH_DATE = "19431127"
STUDY_DATE = "20190314"
ACQUISITION_TIME = "101112.5"
ACCESSION = "ACC55221QX"
INSTITUTION = "Hospital Sanctus Quirinus"
INSTITUTION_ADDRESS = "Calle Falsa 123 Zaragoza"
REFERRING = "Drwhoqx^Referrina"
PERFORMING = "Perfomqx^Sonographa"
OPERATOR = "Operqx^Tecnica"
STATION = "STATIONQZ1"
SERIAL = "SN77812QX"
STUDY_DESCRIPTION = "Mama derecha Quirinalda control"
IMAGE_COMMENTS = "Paciente Zyqwertson refiere dolor"
REQUESTED_ID = "REQ3344QX"
PRIVATE_VALUE = "PrivateSecret998QX"
STUDY_UID = "1.2.826.0.1.3680043.2.1125.99887766"
SERIES_UID = "1.2.826.0.1.3680043.2.1125.99887767"
SOP_UID = "1.2.826.0.1.3680043.2.1125.55443322"


def date_forms(dicom_date: str) -> list[str]:
    """The ways a DA value may be written out (a bare year is left out: in a database dump any
    four-digit id or sequence value would match it)."""
    y, m, d = dicom_date[:4], dicom_date[4:6], dicom_date[6:8]
    return [f"{y}-{m}-{d}", f"{d}/{m}/{y}", f"{m}/{d}/{y}", f"{y}.{m}.{d}", f"{d}.{m}.{y}"]


IDENTIFYING = [
    *PATIENT_NAME.split("^"),
    PATIENT_ID,
    ISSUER,
    OTHER_ID,
    OTHER_SEQ_ID,
    BIRTH_DATE,
    *date_forms(BIRTH_DATE),
    STUDY_DATE,
    *date_forms(STUDY_DATE),
    ACQUISITION_TIME,
    ACCESSION,
    INSTITUTION,
    "Sanctus",
    INSTITUTION_ADDRESS,
    *REFERRING.split("^"),
    *PERFORMING.split("^"),
    *OPERATOR.split("^"),
    STATION,
    SERIAL,
    STUDY_DESCRIPTION,
    IMAGE_COMMENTS,
    REQUESTED_ID,
    PRIVATE_VALUE,
    STUDY_UID,
    SERIES_UID,
    SOP_UID,
    "99887766",
    "55443322",
]


def region(x0: int, y0: int, x1: int, y1: int, dx: float = 0.01, dy: float = 0.01, **kw: int) -> Dataset:
    item = Dataset()
    item.RegionSpatialFormat = kw.get("spatial_format", 1)
    item.RegionDataType = kw.get("data_type", 1)
    item.RegionFlags = 0
    item.RegionLocationMinX0, item.RegionLocationMinY0 = x0, y0
    item.RegionLocationMaxX1, item.RegionLocationMaxY1 = x1, y1
    item.PhysicalUnitsXDirection = kw.get("units_x", 3)
    item.PhysicalUnitsYDirection = kw.get("units_y", 3)
    item.PhysicalDeltaX, item.PhysicalDeltaY = dx, dy
    return item


def us_dataset(
    pixels: np.ndarray | None = None,
    *,
    photometric: str = "MONOCHROME2",
    identifying: bool = True,
    transfer_syntax: str = ExplicitVRLittleEndian,
) -> Dataset:
    """A small single-frame US image; with `identifying`, every identifying string above is in it."""
    if pixels is None:
        pixels = (np.arange(48 * 64, dtype=np.uint32).reshape(48, 64) % 251).astype(np.uint8)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = US_IMAGE_STORAGE
    meta.MediaStorageSOPInstanceUID = SOP_UID if identifying else pydicom.uid.generate_uid()
    meta.TransferSyntaxUID = transfer_syntax
    ds = Dataset()
    ds.file_meta = meta
    ds.preamble = b"\0" * 128
    ds.SOPClassUID = US_IMAGE_STORAGE
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "US"
    ds.Manufacturer = "ACME Medical"
    ds.ManufacturerModelName = "Sono 3000"
    ds.ImageLaterality = "R"
    ds.InstanceNumber = 1
    if identifying:
        ds.PatientName = PATIENT_NAME
        ds.PatientID = PATIENT_ID
        ds.IssuerOfPatientID = ISSUER
        ds.OtherPatientIDs = OTHER_ID
        other = Dataset()
        other.PatientID = OTHER_SEQ_ID
        other.TypeOfPatientID = "TEXT"
        ds.OtherPatientIDsSequence = Sequence([other])
        ds.PatientBirthDate = BIRTH_DATE
        ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = STUDY_DATE
        ds.StudyTime = ds.AcquisitionTime = ds.ContentTime = ACQUISITION_TIME
        ds.AcquisitionDateTime = STUDY_DATE + ACQUISITION_TIME
        ds.AccessionNumber = ACCESSION
        ds.InstitutionName = INSTITUTION
        ds.InstitutionAddress = INSTITUTION_ADDRESS
        ds.ReferringPhysicianName = REFERRING
        ds.PerformingPhysicianName = PERFORMING
        ds.OperatorsName = OPERATOR
        ds.StationName = STATION
        ds.DeviceSerialNumber = SERIAL
        ds.StudyDescription = STUDY_DESCRIPTION
        ds.ImageComments = IMAGE_COMMENTS
        ds.StudyInstanceUID = STUDY_UID
        ds.SeriesInstanceUID = SERIES_UID
        request = Dataset()
        request.RequestedProcedureID = REQUESTED_ID
        nested = Dataset()
        nested.PatientName = PATIENT_NAME  # identifying values nested two levels deep
        nested.PatientID = PATIENT_ID
        request.ReferencedPatientSequence = Sequence([nested])
        ds.RequestAttributesSequence = Sequence([request])
        block = ds.private_block(0x0009, "ACME PRIVATE QX", create=True)
        block.add_new(0x01, "LO", PRIVATE_VALUE)
        block.add_new(0x02, "LO", PATIENT_NAME)
    ds.SequenceOfUltrasoundRegions = Sequence([region(4, 2, 59, 45, 0.02, 0.03)])
    set_pixels(ds, pixels, photometric=photometric)
    return ds


def set_pixels(ds: Dataset, pixels: np.ndarray, *, photometric: str = "MONOCHROME2", frames: int = 1) -> None:
    ds.Rows, ds.Columns = pixels.shape[1:3] if frames > 1 else pixels.shape[0:2]
    ds.SamplesPerPixel = 3 if photometric in ("RGB", "YBR_FULL") else 1
    if ds.SamplesPerPixel == 3:
        ds.PlanarConfiguration = 0
    ds.PhotometricInterpretation = photometric
    bits = pixels.dtype.itemsize * 8
    ds.BitsAllocated = bits
    ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = 0
    if frames > 1:
        ds.NumberOfFrames = frames
    ds.PixelData = pixels.tobytes()


def to_bytes(ds: Dataset) -> bytes:
    buffer = BytesIO()
    encoding = {}
    if not ds.file_meta.TransferSyntaxUID.is_transfer_syntax:  # pydicom needs the encoding spelled out
        encoding = {"implicit_vr": False, "little_endian": True}
    ds.save_as(buffer, enforce_file_format=True, **encoding)
    return buffer.getvalue()


def bare_bytes(ds: Dataset) -> bytes:
    """The dataset alone, implicit VR little endian, without preamble or file meta (old exports)."""
    bare = ds.copy()
    bare.file_meta = FileMetaDataset()
    bare.preamble = None
    buffer = BytesIO()
    pydicom.dcmwrite(buffer, bare, implicit_vr=True, little_endian=True)
    return buffer.getvalue()
