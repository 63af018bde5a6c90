"""Decoding one frame at a time to the 8-bit RGB (H x W x 3, uint8) the app stores.

Decoders are pydicom 3's plugins, restricted here to permissively licensed ones: pillow (HPND),
python-gdcm (Apache-2.0), pylibjpeg with pylibjpeg-openjpeg and pylibjpeg-rle (MIT), pyjpegls
(MIT) and pydicom's own RLE and native code (MIT); 12-bit JPEG Extended, which none of those
decodes, goes to imagecodecs (BSD-3-Clause, libjpeg-turbo's 12-bit decoder). pydicom's "pylibjpeg" plugin for the JPEG
(10918) and JPEG-LS syntaxes needs pylibjpeg-libjpeg, which is GPL-3.0, so `PLUGINS` never names
"pylibjpeg" for those syntaxes even if someone installs that package.
"""

from __future__ import annotations

import numpy as np
from pydicom.dataset import Dataset
from pydicom.pixels import apply_color_lut, apply_modality_lut, apply_voi, get_decoder
from pydicom.pixels.processing import convert_color_space
from pydicom.uid import (
    JPEG2000,
    UID,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
)

from .errors import DicomError, quiet, transfer_syntax_name

# Transfer syntax -> decoding plugins to try, in order ("" is pydicom's native reader).
PLUGINS: dict[str, tuple[str, ...]] = {
    ImplicitVRLittleEndian: ("",),
    ExplicitVRLittleEndian: ("",),
    ExplicitVRBigEndian: ("",),
    RLELossless: ("pylibjpeg", "pydicom"),  # pylibjpeg-rle is the fast one; pydicom's is pure Python
    JPEGBaseline8Bit: ("pillow", "gdcm"),
    # 8-bit samples only: neither decodes 12-bit JPEG Extended, which goes to imagecodecs (below).
    JPEGExtended12Bit: ("pillow", "gdcm"),
    JPEGLossless: ("gdcm",),
    JPEGLosslessSV1: ("gdcm",),
    JPEGLSLossless: ("pyjpegls", "gdcm"),
    JPEGLSNearLossless: ("pyjpegls", "gdcm"),
    JPEG2000Lossless: ("pylibjpeg", "gdcm", "pillow"),
    JPEG2000: ("pylibjpeg", "gdcm", "pillow"),
}

MONOCHROME = ("MONOCHROME1", "MONOCHROME2")


def _transfer_syntax(ds: Dataset) -> UID:
    return UID(str(ds.file_meta.get("TransferSyntaxUID", "") or ""))


def _available_plugins(ts: str) -> list[str]:
    """The plugins from `PLUGINS` that pydicom reports usable here, in our order."""
    if ts not in PLUGINS:
        return []
    try:
        decoder = get_decoder(ts)
    except (NotImplementedError, ValueError):
        return []
    available = set(decoder.available_plugins)
    wanted = PLUGINS[ts]
    if wanted == ("",):
        return [""] if decoder.is_available else []
    return [name for name in wanted if name in available]


def check_decodable(ds: Dataset) -> None:
    """Refuse a transfer syntax no installed, permissively licensed decoder handles, naming it."""
    ts = _transfer_syntax(ds)
    if not _available_plugins(ts):
        raise DicomError("unsupported_transfer_syntax", f"Unsupported transfer syntax: {transfer_syntax_name(ts)}.")


def decode_frame(ds: Dataset, index: int) -> np.ndarray:
    """Decode frame `index` (0-based) and only that frame, as H x W x 3 uint8 RGB.

    For encapsulated data pydicom hands the decoder that frame's fragments alone; for native data
    it slices that frame's bytes. A grey image comes back grey in all three channels.
    """
    from .reading import frame_count  # the reading module imports this one

    total = frame_count(ds)
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < total:
        raise DicomError(
            "frame_index", f"There is no frame {index!s:.12}: the file has {total} frame(s), 0 to {total - 1}."
        )
    ts = _transfer_syntax(ds)
    plugins = _available_plugins(ts)
    if not plugins:
        raise DicomError("unsupported_transfer_syntax", f"Unsupported transfer syntax: {transfer_syntax_name(ts)}.")
    if ts == JPEGExtended12Bit and int(ds.get("BitsStored") or 8) > 8:
        array, photometric = _decode_jpeg12(ds, index, total), str(ds.get("PhotometricInterpretation") or "")
        with quiet():
            return to_rgb8(array, ds, photometric)
    decoder = get_decoder(ts)
    for plugin in plugins:
        try:
            with quiet():
                array, meta = decoder.as_array(ds, index=index, decoding_plugin=plugin, as_rgb=True)
            break
        except Exception:
            continue
    else:
        raise DicomError(
            "decode",
            f"Frame {index} could not be decoded: the pixel data is corrupt or truncated, or uses a variant of "
            f"{transfer_syntax_name(ts)} that the installed decoders do not support.",
        )
    photometric = str(meta.get("photometric_interpretation") or ds.get("PhotometricInterpretation") or "")
    try:
        with quiet():
            return to_rgb8(array, ds, photometric)
    except DicomError:
        raise
    except Exception:
        raise DicomError(
            "decode", f"Frame {index} could not be converted to RGB: its colour tables are invalid."
        ) from None


def _decode_jpeg12(ds: Dataset, index: int, total: int) -> np.ndarray:
    """One frame of 12-bit JPEG Extended with imagecodecs (the samples as uint16)."""
    import imagecodecs
    from pydicom.encaps import get_frame

    try:
        with quiet():
            return imagecodecs.jpeg8_decode(get_frame(ds.PixelData, index, number_of_frames=total))
    except Exception:
        raise DicomError(
            "decode", f"Frame {index} could not be decoded: the 12-bit JPEG data is corrupt or truncated."
        ) from None


def key_frame_index(ds: Dataset) -> int:
    """The frame imported by default: Representative Frame Number if valid, else the middle frame.

    Returned 0-based; Representative Frame Number (0028,6010) is 1-based in DICOM. The middle of an
    even count is the earlier of the two middle frames (frame 14 of 0-29).
    """
    from .reading import _int, frame_count

    total = frame_count(ds)
    representative = _int(ds, "RepresentativeFrameNumber")
    if representative and 1 <= representative <= total:
        return representative - 1
    return (total - 1) // 2


# --- conversion to 8-bit RGB --------------------------------------------------------------------


def to_rgb8(array: np.ndarray, ds: Dataset, photometric: str) -> np.ndarray:
    if photometric == "PALETTE COLOR":
        return _palette_to_rgb8(array, ds)
    if photometric in MONOCHROME:
        grey = _grey_to_8bit(array, ds)
        if photometric == "MONOCHROME1":
            grey = 255 - grey
        return np.repeat(grey[:, :, np.newaxis], 3, axis=2)
    if photometric in ("YBR_FULL", "YBR_FULL_422"):
        # Only reached if a decoder kept YCbCr despite as_rgb (pydicom converts otherwise).
        array = convert_color_space(array, "YBR_FULL", "RGB")
        photometric = "RGB"
    if photometric == "RGB" and array.ndim == 3 and array.shape[2] == 3:
        return _colour_to_8bit(array, ds)
    raise DicomError("photometric", f"Photometric interpretation {photometric[:16] or 'missing'} is not supported.")


def _colour_to_8bit(array: np.ndarray, ds: Dataset) -> np.ndarray:
    if array.dtype == np.uint8:
        return np.ascontiguousarray(array)
    bits = int(ds.get("BitsStored") or array.dtype.itemsize * 8)
    shift = max(bits - 8, 0)
    return np.clip(array.astype(np.int64) >> shift, 0, 255).astype(np.uint8)


def _palette_to_rgb8(array: np.ndarray, ds: Dataset) -> np.ndarray:
    """Look the frame up in the palette, built once as an 8-bit table of every entry.

    Values below the first entry take the first colour and above the last the last (PS3.3
    C.7.6.3.1.5). 16-bit entries keep their top byte, except that some scanners declare 16 bits
    but write 0-255 entries; shifting those would give a black image, so they are kept as they are.
    """
    first = int(ds.RedPaletteColorLookupTableDescriptor[1])
    entries = int(ds.RedPaletteColorLookupTableDescriptor[0]) or 65536
    info = np.iinfo(array.dtype)
    indexes = np.arange(max(first, info.min), min(first + entries, info.max + 1)).astype(array.dtype)
    table = apply_color_lut(indexes, ds).reshape(-1, 3)
    if table.dtype != np.uint8:
        table = table if int(table.max(initial=0)) <= 255 else table >> 8
        table = table.astype(np.uint8)
    positions = np.clip(array.astype(np.int64) - int(indexes[0]), 0, len(table) - 1)
    return np.take(table, positions, axis=0)


def _first_number(value: object) -> float | None:
    if value is None or value == "":
        return None
    try:
        if isinstance(value, list | tuple) or hasattr(value, "__getitem__") and not isinstance(value, str):
            value = value[0]
        number = float(value)
    except (TypeError, ValueError, IndexError):
        return None
    return number if np.isfinite(number) else None


def _grey_to_8bit(array: np.ndarray, ds: Dataset) -> np.ndarray:
    """Grey levels to 0-255: 8-bit data as stored; deeper data through its VOI LUT or window, else min-max.

    Ultrasound is 8-bit and already display-processed, so it is never re-windowed. Deeper data
    (a 12- or 16-bit secondary capture) follows the display the modality asked for: the VOI LUT
    Sequence, else the first Window Center/Width (DICOM PS3.3 C.11.2.1.2), after the modality LUT;
    without either, the frame's own minimum and maximum.
    """
    bits = int(ds.get("BitsStored") or array.dtype.itemsize * 8)
    signed = int(ds.get("PixelRepresentation") or 0) == 1
    if bits <= 8 and not signed and "RescaleSlope" not in ds and "ModalityLUTSequence" not in ds:
        return np.clip(array, 0, 255).astype(np.uint8)
    values = apply_modality_lut(array, ds).astype(np.float64)
    if "VOILUTSequence" in ds and len(ds.VOILUTSequence):
        out = apply_voi(array if "ModalityLUTSequence" in ds else values, ds, index=0).astype(np.float64)
        lut_bits = int(ds.VOILUTSequence[0].LUTDescriptor[2])
        return np.clip(np.rint(out * 255.0 / (2**lut_bits - 1)), 0, 255).astype(np.uint8)
    center, width = _first_number(ds.get("WindowCenter")), _first_number(ds.get("WindowWidth"))
    if center is not None and width is not None and width >= 1:
        function = str(ds.get("VOILUTFunction") or "LINEAR").upper()
        if function == "SIGMOID":
            scaled = 1.0 / (1.0 + np.exp(-4.0 * (values - center) / width))
        elif function == "LINEAR_EXACT":
            scaled = (values - center) / width + 0.5
        else:
            scaled = (values - (center - 0.5)) / max(width - 1.0, 1.0) + 0.5
        return np.clip(np.rint(scaled * 255.0), 0, 255).astype(np.uint8)
    low, high = float(values.min()), float(values.max())
    if high <= low:
        return np.zeros(values.shape, dtype=np.uint8)
    return np.clip(np.rint((values - low) * 255.0 / (high - low)), 0, 255).astype(np.uint8)
