"""The DICOM reading layer: bytes in; checked header, 8-bit RGB frames and allow-listed values out.

Plain Python, no Django: limits and secrets are arguments, so the importer passes them from
settings. Typical use::

    if is_dicom(data):
        ds = read_dicom(data, max_pixels=..., max_frames=...)   # DicomError on anything refused
        index = key_frame_index(ds)
        rgb = decode_frame(ds, index)
        summary = header_summary(ds, frame_index=index)          # the only header values to store
        key = patient_key(ds, secret)                            # look up or assign a patient code
        order = acquisition_order(ds)                            # compare, never store

Nothing identifying leaves this package except through the pixels (burned-in text is the next
step's job): see `header` for the allow-list and `errors` for how messages and logs are kept clean.
"""

from .calibration import (
    SOURCE_IMAGER_PIXEL_SPACING,
    SOURCE_NONE,
    SOURCE_PIXEL_SPACING,
    SOURCE_REGION,
    Calibration,
    Region,
    calibration,
    colour_share,
    has_colour,
    regions,
    tissue_region,
)
from .errors import DicomError
from .header import AcquisitionOrder, acquisition_order, header_summary, instance_key, patient_code, patient_key
from .pixels import PLUGINS, decode_frame, key_frame_index
from .reading import DEFAULT_MAX_FRAMES, DEFAULT_MAX_PIXELS, frame_count, is_dicom, read_dicom

__all__ = [
    "DEFAULT_MAX_FRAMES",
    "DEFAULT_MAX_PIXELS",
    "PLUGINS",
    "SOURCE_IMAGER_PIXEL_SPACING",
    "SOURCE_NONE",
    "SOURCE_PIXEL_SPACING",
    "SOURCE_REGION",
    "AcquisitionOrder",
    "Calibration",
    "DicomError",
    "Region",
    "acquisition_order",
    "calibration",
    "colour_share",
    "decode_frame",
    "frame_count",
    "has_colour",
    "header_summary",
    "instance_key",
    "is_dicom",
    "key_frame_index",
    "patient_code",
    "patient_key",
    "read_dicom",
    "regions",
    "tissue_region",
]
