"""annotator.dicom: recognising, refusing, decoding, de-identifying and calibrating DICOM ultrasound.

Real files from pydicom's test data and the pydicom-data wheel; synthetic files from
tests/dicom_samples.py. No database: the module is plain Python.
"""

from __future__ import annotations

import io
import json
import logging
import traceback
import zipfile

import numpy as np
import PIL.Image
import pytest
from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate
from pydicom.sequence import Sequence
from pydicom.uid import JPEGBaseline8Bit, JPEGLSTransferSyntaxes, JPEGTransferSyntaxes, MediaStorageDirectoryStorage

from annotator import dicom
from annotator.dicom import DicomError
from tests import dicom_samples as samples
from tests.dicom_samples import IDENTIFYING, example, shipped_file

SECRET = b"k" * 32


def open_file(data: bytes, **kwargs) -> tuple:
    ds = dicom.read_dicom(data, **kwargs)
    index = dicom.key_frame_index(ds)
    return ds, dicom.decode_frame(ds, index)


def refusal(data: bytes, **kwargs) -> DicomError:
    with pytest.raises(DicomError) as caught:
        ds = dicom.read_dicom(data, **kwargs)
        dicom.decode_frame(ds, dicom.key_frame_index(ds))
    return caught.value


def png_bytes() -> bytes:
    buffer = io.BytesIO()
    PIL.Image.new("RGB", (200, 100), (10, 20, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


# --- recognising --------------------------------------------------------------------------------


def test_is_dicom_recognises_part10_files_by_content():
    assert dicom.is_dicom(shipped_file("OBXXXX1A.dcm")) is True
    assert dicom.is_dicom(shipped_file("gdcm-US-ALOKA-16.dcm")) is True


def test_is_dicom_recognises_a_bare_implicit_vr_dataset_without_preamble():
    data = samples.bare_bytes(samples.us_dataset(identifying=False))
    assert data[128:132] != b"DICM"
    assert dicom.is_dicom(data) is True
    ds, rgb = open_file(data)
    assert rgb.shape == (48, 64, 3)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"DICM",
        b"hello, this is a text file that is long enough to be looked at",
        png_bytes(),
        b"\xff\xd8\xff\xe0" + b"\0" * 300,  # a JPEG
        b"\x08\x00" + b"\xff" * 300,  # starts like a bare dataset, is not one
    ],
    ids=["empty", "short", "text", "png", "jpeg", "bare-garbage"],
)
def test_is_dicom_rejects_other_content(data):
    assert dicom.is_dicom(data) is False


def test_is_dicom_does_not_claim_a_zip_of_dicom_files():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("a.dcm", shipped_file("OBXXXX1A.dcm"))
    assert dicom.is_dicom(buffer.getvalue()) is False


# --- refusals -----------------------------------------------------------------------------------


def test_a_non_dicom_file_named_dcm_is_refused():
    assert refusal(png_bytes()).code == "not_dicom"


def test_a_file_with_the_dicm_prefix_but_a_damaged_header_is_refused():
    data = b"\0" * 128 + b"DICM" + b"\x02\x00\x10\x00UI\xff\x7f" + b"\x01" * 40
    assert dicom.is_dicom(data) is True
    assert refusal(data).code == "unreadable"


def test_a_dicomdir_is_refused():
    error = refusal(example("dicomdir"))
    assert error.code == "dicomdir"
    assert "DICOMDIR" in str(error)


def test_a_file_cut_before_its_pixel_data_is_reported_truncated():
    data = shipped_file("OBXXXX1A.dcm")
    assert refusal(data[:2000]).code == "truncated"


def test_a_structured_report_has_no_pixel_data_and_is_refused():
    error = refusal(shipped_file("test-SR.dcm"))
    assert error.code == "no_pixel_data"
    assert "Comprehensive SR Storage" in str(error)


@pytest.mark.parametrize(
    "sop_class",
    ["1.2.840.10008.5.1.4.1.1.88.59", "1.2.840.10008.5.1.4.1.1.11.1"],
    ids=["key-object-selection", "presentation-state"],
)
def test_objects_without_pixel_data_are_refused(sop_class):
    ds = samples.us_dataset()
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = sop_class
    del ds.PixelData
    assert refusal(samples.to_bytes(ds)).code == "no_pixel_data"


def test_a_modality_other_than_us_is_refused_unless_allowed():
    data = shipped_file("CT_small.dcm")
    error = refusal(data)
    assert error.code == "modality"
    assert "CT" in str(error)
    ds, rgb = open_file(data, allow_modalities={"CT"})
    assert rgb.shape == (128, 128, 3)


def test_a_us_storage_class_without_modality_is_taken_as_us():
    ds = samples.us_dataset(identifying=False)
    del ds.Modality
    dicom.read_dicom(samples.to_bytes(ds))


def test_truncated_native_pixel_data_is_refused_before_decoding():
    data = shipped_file("OBXXXX1A.dcm")
    error = refusal(data[:-5000])
    assert error.code == "truncated"
    assert refusal(shipped_file("MR_truncated.dcm"), allow_modalities={"MR"}).code == "truncated"


def test_truncated_encapsulated_pixel_data_is_refused():
    data = shipped_file("JPGLosslessP14SV1_1s_1f_8b.dcm")
    assert refusal(data[: len(data) - 60_000]).code == "truncated"


def test_a_frame_count_past_the_limit_is_refused_from_the_header():
    data = shipped_file("color3d_jpeg_baseline.dcm")
    error = refusal(data, max_frames=100)
    assert error.code == "too_many_frames"
    assert "120" in str(error) and "100" in str(error)


def test_a_decompression_bomb_is_refused_before_any_decoding():
    """A 64 kB JPEG that claims 30000 x 30000 pixels is refused from its header."""
    ds = samples.us_dataset(identifying=False)
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds.Rows = ds.Columns = 30_000
    ds.PixelData = encapsulate([b"\xff\xd8" + b"\0" * 65_000 + b"\xff\xd9"])
    ds["PixelData"].VR = "OB"
    error = refusal(samples.to_bytes(ds))
    assert error.code == "too_large"
    assert "900000000" in str(error)


def test_the_pixel_limit_counts_every_frame():
    data = shipped_file("color3d_jpeg_baseline.dcm")  # 640 x 480 x 120 = 36.9 M pixels
    assert refusal(data, max_pixels=30_000_000).code == "too_large"
    dicom.read_dicom(data, max_pixels=40_000_000)


def test_an_unsupported_transfer_syntax_is_refused_naming_it():
    ds = samples.us_dataset(identifying=False)
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.100"  # MPEG2 video
    ds.PixelData = encapsulate([b"\0" * 100])
    error = refusal(samples.to_bytes(ds))
    assert error.code == "unsupported_transfer_syntax"
    assert "MPEG2" in str(error)


def test_a_deflated_dataset_is_refused_without_inflating_it():
    error = refusal(shipped_file("image_dfl.dcm"), allow_modalities={"MR", "OT", "CT"})
    assert error.code == "unsupported_transfer_syntax"
    assert "Deflated" in str(error)


def test_12_bit_jpeg_extended_decodes_to_the_values_pydicoms_own_tests_give():
    """pydicom's test suite checks its (GPL) libjpeg decode of this file at two pixels: 244 and 95.
    imagecodecs gives the same 12-bit samples; the stored image is their min-max to 8-bit grey."""
    from pydicom.encaps import get_frame

    from annotator.dicom.pixels import _decode_jpeg12

    data = shipped_file("JPEG-lossy.dcm")
    ds = dicom.read_dicom(data, allow_modalities={"NM"})
    raw = _decode_jpeg12(ds, 0, 1)
    assert raw.shape == (1024, 256) and raw[420, 140] == 244 and raw[230, 120] == 95
    rgb = dicom.decode_frame(ds, 0)
    assert rgb.shape == (1024, 256, 3) and rgb.dtype == np.uint8
    assert (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all()
    scaled = np.rint((raw.astype(float) - raw.min()) * 255 / (raw.max() - raw.min()))
    assert np.abs(rgb[..., 0].astype(int) - scaled).max() <= 1
    # A stream that is not JPEG is a clear error, not a crash.
    frame = get_frame(ds.PixelData, 0, number_of_frames=1)
    ds.PixelData = encapsulate([b"\x00" * len(frame)])
    with pytest.raises(DicomError) as caught:
        dicom.decode_frame(ds, 0)
    assert caught.value.code == "decode"


def test_no_gpl_decoder_is_ever_asked_for_jpeg_or_jpeg_ls():
    """pydicom's pylibjpeg plugin decodes JPEG and JPEG-LS through pylibjpeg-libjpeg (GPL-3.0)."""
    for uid in [*JPEGTransferSyntaxes, *JPEGLSTransferSyntaxes]:
        assert dicom.PLUGINS[uid], uid.name
        assert "pylibjpeg" not in dicom.PLUGINS[uid], uid.name


# --- decoding -----------------------------------------------------------------------------------


def test_native_big_endian_and_rle_variants_decode_to_the_same_pixels():
    _, native = open_file(shipped_file("OBXXXX1A.dcm"))
    _, big = open_file(shipped_file("OBXXXX1A_expb.dcm"))
    _, rle = open_file(shipped_file("OBXXXX1A_rle.dcm"))
    assert native.shape == (600, 800, 3) and native.dtype == np.uint8
    assert np.array_equal(native, big)
    assert np.array_equal(native, rle)


def test_jpeg_2000_lossless_equals_the_uncompressed_image_and_lossy_is_close():
    _, raw = open_file(shipped_file("US1_UNCR.dcm"))
    _, lossless = open_file(shipped_file("US1_J2KR.dcm"))
    _, lossy = open_file(shipped_file("US1_J2KI.dcm"))
    assert np.array_equal(raw, lossless)
    assert np.abs(raw.astype(int) - lossy).mean() < 3


def test_jpeg_ls_and_jpeg_2000_decode_like_native_on_the_same_image():
    options = {"allow_modalities": {"MR"}}
    _, native = open_file(shipped_file("emri_small.dcm"), **options)
    _, jpeg_ls = open_file(shipped_file("emri_small_jpeg_ls_lossless.dcm"), **options)
    _, j2k = open_file(shipped_file("emri_small_jpeg_2k_lossless.dcm"), **options)
    assert np.array_equal(native, jpeg_ls)
    assert np.array_equal(native, j2k)
    assert native.max() == 255 and native.min() == 0  # 12-bit data, no window: min-max to 0-255


def test_jpeg_lossless_grey_b_mode_stays_grey_in_all_three_channels():
    _, rgb = open_file(shipped_file("JPGLosslessP14SV1_1s_1f_8b.dcm"))
    assert rgb.shape == (768, 1024, 3)
    assert np.array_equal(rgb[:, :, 0], rgb[:, :, 1]) and np.array_equal(rgb[:, :, 1], rgb[:, :, 2])
    assert rgb.std() > 10  # an image, not a blank


def test_jpeg_baseline_ybr_422_becomes_rgb_with_grey_tissue():
    ds, rgb = open_file(shipped_file("color3d_jpeg_baseline.dcm"))
    left, top, right, bottom = dicom.calibration(ds).crop
    tissue = rgb[top:bottom, left:right].astype(int)
    spread = tissue.max(axis=2) - tissue.min(axis=2)
    assert np.percentile(spread, 99) <= 4  # YCbCr converted: grey B-mode is (near) equal R, G, B
    assert tissue.mean() > 10


def test_ybr_full_and_ybr_full_422_convert_to_the_rgb_image():
    options = {"allow_modalities": {"OT"}}
    _, rgb = open_file(shipped_file("SC_rgb.dcm"), **options)
    for name in ("SC_ybr_full_uncompressed.dcm", "SC_ybr_full_422_uncompressed.dcm"):
        _, converted = open_file(shipped_file(name), **options)
        assert np.abs(rgb.astype(int) - converted).max() <= 8, name


def test_16_bit_palette_colour_maps_to_8_bit_through_the_lut_top_byte():
    ds, rgb = open_file(shipped_file("gdcm-US-ALOKA-16.dcm"))
    _, big = open_file(shipped_file("gdcm-US-ALOKA-16_big.dcm"))
    assert np.array_equal(rgb, big)
    from pydicom.pixels import apply_color_lut

    expected = (apply_color_lut(ds.pixel_array, ds) >> 8).astype(np.uint8)
    assert np.array_equal(rgb, expected)
    assert rgb.max() > 200  # not wrapped or left dark


def test_8_bit_palette_colour_example_decodes():
    _, rgb = open_file(example("palette_color"))
    assert rgb.shape == (350, 800, 3)
    assert len(np.unique(rgb.reshape(-1, 3), axis=0)) > 50


def palette_image(entry_max: int) -> bytes:
    """A 2 x 2 palette image whose 16-bit LUT entries run 0..entry_max (255: written as 8-bit values)."""
    ds = samples.us_dataset(np.array([[0, 1], [2, 255]], dtype=np.uint8), photometric="PALETTE COLOR")
    ramp = (np.arange(256) * entry_max // 255).astype(np.uint16)
    for colour, entries in (("Red", ramp), ("Green", ramp[::-1].copy()), ("Blue", np.full(256, 7 * entry_max // 255))):
        ds.add_new(tag_for_keyword(f"{colour}PaletteColorLookupTableDescriptor"), "US", [256, 0, 16])
        ds.add_new(tag_for_keyword(f"{colour}PaletteColorLookupTableData"), "OW", entries.astype(np.uint16).tobytes())
    return samples.to_bytes(ds)


@pytest.mark.parametrize("entry_max", [65535, 255], ids=["16-bit-entries", "8-bit-values-in-16-bit-lut"])
def test_16_bit_palettes_give_the_same_8_bit_colours_however_the_scanner_filled_them(entry_max):
    rgb = dicom.decode_frame(dicom.read_dicom(palette_image(entry_max)), 0)
    assert rgb.tolist() == [[[0, 255, 7], [1, 254, 7]], [[2, 253, 7], [255, 0, 7]]]


def test_a_bare_dataset_from_pydicom_data_is_recognised_and_decoded():
    data = shipped_file("OT-PAL-8-face.dcm")  # no preamble, no file meta, implicit VR
    assert data[128:132] != b"DICM" and dicom.is_dicom(data) is True
    ds, rgb = open_file(data, allow_modalities={"OT"})
    assert rgb.shape == (480, 640, 3) and len(np.unique(rgb.reshape(-1, 3), axis=0)) > 50


def test_jpeg_baseline_variants_match_the_uncompressed_rgb_within_jpeg_tolerance():
    options = {"allow_modalities": {"OT"}}
    _, reference = open_file(shipped_file("SC_rgb.dcm"), **options)
    for name in (
        "SC_rgb_jpeg_dcmtk.dcm",
        "SC_rgb_dcmtk_+eb+cy+s2.dcm",
        "SC_rgb_dcmtk_+eb+cr.dcm",
        "SC_rgb_jpeg_gdcm.dcm",
    ):
        _, decoded = open_file(shipped_file(name), **options)
        assert np.abs(reference.astype(int) - decoded).mean() < 1.5, name


def test_16_and_32_bit_rgb_scale_to_the_8_bit_image():
    options = {"allow_modalities": {"OT"}}
    _, reference = open_file(shipped_file("SC_rgb.dcm"), **options)
    for name in ("SC_rgb_16bit.dcm", "SC_rgb_expb_16bit.dcm", "SC_rgb_32bit.dcm"):
        _, decoded = open_file(shipped_file(name), **options)
        assert np.abs(reference.astype(int) - decoded).max() <= 1, name


def test_16_bit_greyscale_follows_its_voi_lut():
    ds = samples.us_dataset(np.array([[0, 1], [2, 3]], dtype=np.uint16), identifying=False)
    ds.BitsStored, ds.HighBit = 12, 11
    item = Dataset()
    item.add_new(tag_for_keyword("LUTDescriptor"), "US", [4, 0, 8])
    item.add_new(tag_for_keyword("LUTData"), "US", [0, 50, 100, 255])
    ds.VOILUTSequence = Sequence([item])
    ds.WindowCenter, ds.WindowWidth = 1, 1  # the LUT wins over the window
    rgb = dicom.decode_frame(dicom.read_dicom(samples.to_bytes(ds)), 0)
    assert rgb[:, :, 1].tolist() == [[0, 50], [100, 255]]


def test_monochrome1_is_inverted():
    pixels = np.array([[0, 100], [200, 255]], dtype=np.uint8)
    ds = samples.us_dataset(pixels, photometric="MONOCHROME2", identifying=False)
    del ds.SequenceOfUltrasoundRegions
    mono2 = dicom.decode_frame(dicom.read_dicom(samples.to_bytes(ds)), 0)
    ds.PhotometricInterpretation = "MONOCHROME1"
    mono1 = dicom.decode_frame(dicom.read_dicom(samples.to_bytes(ds)), 0)
    assert mono2[:, :, 0].tolist() == [[0, 100], [200, 255]]
    assert mono1[:, :, 0].tolist() == [[255, 155], [55, 0]]
    assert np.array_equal(mono1[:, :, 0], mono1[:, :, 2])


def test_16_bit_greyscale_follows_its_window():
    pixels = np.array([[0, 1000, 1500], [2000, 3000, 4095]], dtype=np.uint16)
    ds = samples.us_dataset(pixels, identifying=False)
    ds.BitsStored, ds.HighBit = 12, 11
    ds.WindowCenter, ds.WindowWidth = 2000, 1001
    rgb = dicom.decode_frame(dicom.read_dicom(samples.to_bytes(ds)), 0)
    # DICOM linear window: below 1500 black, above 2500 white, centre half grey.
    assert rgb[:, :, 0].tolist() == [[0, 0, 0], [128, 255, 255]]


def test_16_bit_greyscale_without_window_is_stretched_min_to_max():
    pixels = np.array([[100, 300], [500, 900]], dtype=np.uint16)
    ds = samples.us_dataset(pixels, identifying=False)
    ds.BitsStored, ds.HighBit = 12, 11
    rgb = dicom.decode_frame(dicom.read_dicom(samples.to_bytes(ds)), 0)
    assert rgb[:, :, 0].tolist() == [[0, 64], [128, 255]]


# --- multi-frame --------------------------------------------------------------------------------


def test_the_key_frame_of_a_cine_loop_is_the_middle_frame():
    ds = dicom.read_dicom(shipped_file("color3d_jpeg_baseline.dcm"))
    assert dicom.frame_count(ds) == 120
    assert dicom.key_frame_index(ds) == 59
    ds = dicom.read_dicom(example("ybr_color"))
    assert (dicom.frame_count(ds), dicom.key_frame_index(ds)) == (30, 14)


def test_representative_frame_number_chooses_the_key_frame():
    ds = dicom.read_dicom(shipped_file("color3d_jpeg_baseline.dcm"))
    ds.RepresentativeFrameNumber = 7  # 1-based in DICOM
    assert dicom.key_frame_index(ds) == 6
    ds.RepresentativeFrameNumber = 500  # out of range: ignored
    assert dicom.key_frame_index(ds) == 59


def test_decoding_one_frame_decodes_only_that_frame():
    """Every other frame's JPEG data is destroyed; the chosen frame still decodes."""
    ds = dicom.read_dicom(shipped_file("color3d_jpeg_baseline.dcm"))
    from pydicom.encaps import generate_frames

    frames = list(generate_frames(ds.PixelData, number_of_frames=120))
    expected = dicom.decode_frame(ds, 59)
    broken = [frame if i == 59 else b"\xff\xd8" + b"\x00" * 32 for i, frame in enumerate(frames)]
    ds.PixelData = encapsulate(broken)
    assert np.array_equal(dicom.decode_frame(ds, 59), expected)
    with pytest.raises(DicomError) as caught:
        dicom.decode_frame(ds, 58)
    assert caught.value.code == "decode"


def test_frames_of_a_cine_loop_differ_and_out_of_range_is_refused():
    ds = dicom.read_dicom(shipped_file("color3d_jpeg_baseline.dcm"))
    assert not np.array_equal(dicom.decode_frame(ds, 0), dicom.decode_frame(ds, 119))
    for index in (-1, 120):
        with pytest.raises(DicomError) as caught:
            dicom.decode_frame(ds, index)
        assert caught.value.code == "frame_index"


def test_native_multi_frame_decodes_the_requested_frame():
    ds = dicom.read_dicom(shipped_file("OBXXXX1A_2frame.dcm"))
    assert dicom.frame_count(ds) == 2 and dicom.key_frame_index(ds) == 0
    first, second = dicom.decode_frame(ds, 0), dicom.decode_frame(ds, 1)
    assert first.shape == second.shape == (600, 800, 3)


# --- calibration --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, delta_cm, crop",
    [
        ("OBXXXX1A.dcm", 0.02622878766196998, (120, 60, 800, 519)),
        ("OBXXXX1A_rle.dcm", 0.02622878766196998, (120, 60, 800, 519)),
        ("JPGLosslessP14SV1_1s_1f_8b.dcm", 0.025476696592378157, (14, 38, 1011, 759)),
        ("color3d_jpeg_baseline.dcm", 0.05104970559477806, (84, 31, 596, 415)),
        # Dual view: two equal 2D tissue regions; the first is taken.
        ("gdcm-US-ALOKA-16.dcm", 0.03826530650258064, (32, 24, 336, 416)),
    ],
)
def test_spacing_in_mm_and_crop_come_from_the_2d_tissue_region(name, delta_cm, crop):
    ds = dicom.read_dicom(shipped_file(name))
    tissue = dicom.tissue_region(ds)
    assert tissue.delta_x == pytest.approx(delta_cm)  # the file's own value, in cm
    found = dicom.calibration(ds)
    assert found.source == "ultrasound region"
    assert found.spacing_x_mm == pytest.approx(delta_cm * 10)
    assert found.spacing_y_mm == pytest.approx(float(tissue.delta_y) * 10)
    assert found.crop == crop


def test_x_and_y_spacing_are_kept_apart():
    ds = samples.us_dataset(identifying=False)  # region deltas 0.02 cm (X) and 0.03 cm (Y)
    found = dicom.calibration(ds)
    assert (found.spacing_x_mm, found.spacing_y_mm) == (pytest.approx(0.2), pytest.approx(0.3))
    assert found.crop == (4, 2, 60, 46)


def test_the_largest_tissue_region_wins_and_other_kinds_are_ignored():
    ds = samples.us_dataset(identifying=False)
    ds.SequenceOfUltrasoundRegions = Sequence(
        [
            samples.region(0, 0, 63, 47, 0.5, 0.5, data_type=3),  # a Doppler spectrum, larger
            samples.region(0, 0, 9, 9, 0.1, 0.1),
            samples.region(10, 10, 50, 40, 0.04, 0.04),
        ]
    )
    found = dicom.calibration(ds)
    assert found.crop == (10, 10, 51, 41)
    assert found.spacing_x_mm == pytest.approx(0.4)


def test_pixel_spacing_is_read_row_then_column():
    ds = samples.us_dataset(identifying=False)
    del ds.SequenceOfUltrasoundRegions
    ds.PixelSpacing = [0.5, 0.25]  # row spacing (Y), column spacing (X)
    found = dicom.calibration(ds)
    assert (found.spacing_x_mm, found.spacing_y_mm, found.source) == (0.25, 0.5, "PixelSpacing")
    assert found.crop is None
    del ds.PixelSpacing
    ds.ImagerPixelSpacing = [0.3, 0.2]
    found = dicom.calibration(ds)
    assert (found.spacing_x_mm, found.spacing_y_mm, found.source) == (0.2, 0.3, "ImagerPixelSpacing")


def test_a_region_in_other_units_gives_the_crop_but_not_the_spacing():
    ds = samples.us_dataset(identifying=False)
    ds.SequenceOfUltrasoundRegions = Sequence([samples.region(4, 2, 59, 45, 0.02, 0.02, units_x=0, units_y=0)])
    found = dicom.calibration(ds)
    assert (found.source, found.spacing_x_mm, found.crop) == ("none", None, (4, 2, 60, 46))
    assert "centimetres" in found.note


def test_without_regions_or_spacing_the_calibration_is_none():
    found = dicom.calibration(dicom.read_dicom(shipped_file("US1_UNCR.dcm")))
    assert (found.source, found.spacing_x_mm, found.spacing_y_mm, found.crop) == ("none", None, None, None)


@pytest.mark.parametrize("name", ["ybr_color", "palette_color"])
def test_a_region_outside_the_image_is_ignored_with_a_note(name):
    """These examples were resized or cut after acquisition: the region no longer fits the pixels."""
    found = dicom.calibration(dicom.read_dicom(example(name)))
    assert (found.source, found.crop) == ("none", None)
    assert "outside the image" in found.note


# --- Doppler suggestion -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, colour",
    [
        ("US1_UNCR.dcm", True),  # power Doppler
        ("US1_J2KI.dcm", True),
        ("OBXXXX1A.dcm", False),
        ("gdcm-US-ALOKA-16.dcm", False),  # grey dual view with green markers
        ("color3d_jpeg_baseline.dcm", False),
        ("JPGLosslessP14SV1_1s_1f_8b.dcm", False),
    ],
)
def test_colour_is_suggested_for_doppler_and_not_for_grey_b_mode(name, colour):
    ds, rgb = open_file(shipped_file(name))
    assert dicom.has_colour(rgb, dicom.calibration(ds).crop) is colour


def test_colour_counts_only_inside_the_region():
    rgb = np.full((100, 100, 3), 90, dtype=np.uint8)
    rgb[0:30, 0:30] = (220, 40, 30)  # a colour bar outside the tissue region
    assert dicom.has_colour(rgb, (40, 40, 100, 100)) is False
    rgb[50:70, 50:70] = (30, 60, 220)
    assert dicom.has_colour(rgb, (40, 40, 100, 100)) is True


# --- de-identification --------------------------------------------------------------------------


def assert_clean(text: str) -> None:
    lowered = text.lower()
    leaked = [s for s in IDENTIFYING if s.lower() in lowered]
    assert not leaked, f"identifying values leaked: {leaked}"


def test_the_synthetic_file_really_carries_every_identifying_string():
    raw = samples.to_bytes(samples.us_dataset()).decode("latin-1").lower()
    written_out = {*samples.date_forms(samples.BIRTH_DATE), *samples.date_forms(samples.STUDY_DATE)}
    missing = [s for s in IDENTIFYING if s.lower() not in raw and s not in written_out]
    assert not missing


def test_header_summary_holds_only_allow_listed_values():
    ds = dicom.read_dicom(samples.to_bytes(samples.us_dataset()))
    summary = dicom.header_summary(ds)
    assert_clean(json.dumps(summary))
    assert summary["modality"] == "US"
    assert (summary["manufacturer"], summary["manufacturer_model"]) == ("ACME Medical", "Sono 3000")
    assert summary["laterality"] == "R"
    assert summary["spacing_source"] == "ultrasound region"
    assert set(summary) == {
        "modality",
        "sop_class",
        "manufacturer",
        "manufacturer_model",
        "laterality",
        "photometric_interpretation",
        "transfer_syntax",
        "rows",
        "columns",
        "bits_stored",
        "frame_count",
        "frame_index",
        "regions",
        "spacing_x_mm",
        "spacing_y_mm",
        "spacing_source",
        "crop",
        "calibration_note",
    }


def test_identifying_text_typed_into_coded_fields_is_not_copied():
    ds = samples.us_dataset()
    ds.ImageLaterality = "QUIRINALDA"
    ds.PhotometricInterpretation = "MONOCHROME2"
    summary = dicom.header_summary(ds)
    assert summary["laterality"] == ""
    ds.Modality = "ZYQWERTSON"
    assert dicom.header_summary(ds)["modality"] == "unrecognised"


def _refusals_of_the_identifying_file() -> list[DicomError]:
    """Trigger every refusal on a file full of identifying values."""
    variants = []

    def variant(change):
        ds = samples.us_dataset()
        change(ds)
        variants.append(samples.to_bytes(ds))

    variant(lambda ds: setattr(ds, "Modality", "QUIRINALDA"))
    variant(lambda ds: setattr(ds, "Modality", "MR"))
    variant(lambda ds: (delattr(ds, "PixelData"), setattr(ds, "SOPClassUID", "1.2.840.10008.5.1.4.1.1.88.59")))
    variant(lambda ds: delattr(ds, "PixelData"))  # an image class without pixels: truncated
    variant(lambda ds: setattr(ds, "PixelData", ds.PixelData[:100]))
    variant(lambda ds: (setattr(ds, "Rows", 60_000), setattr(ds, "Columns", 60_000)))
    variant(lambda ds: setattr(ds, "NumberOfFrames", 99_999))
    variant(lambda ds: setattr(ds, "SOPClassUID", MediaStorageDirectoryStorage))
    variant(lambda ds: setattr(ds.file_meta, "TransferSyntaxUID", samples.SOP_UID))  # a UID as syntax

    def broken_jpeg(ds):
        ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
        ds.PixelData = encapsulate([b"\xff\xd8" + samples.PATIENT_NAME.encode() * 4 + b"\xff\xd9"])

    variant(broken_jpeg)
    errors = [refusal(data) for data in variants]
    errors.append(refusal(samples.to_bytes(samples.us_dataset())[:700]))  # cut inside the header
    ds = dicom.read_dicom(samples.to_bytes(samples.us_dataset()))
    with pytest.raises(DicomError) as caught:
        dicom.decode_frame(ds, 5)
    errors.append(caught.value)
    return errors


def test_no_error_message_or_traceback_contains_identifying_values(caplog):
    caplog.set_level(logging.DEBUG)
    errors = _refusals_of_the_identifying_file()
    codes = {e.code for e in errors}
    assert {"modality", "no_pixel_data", "truncated", "too_large", "too_many_frames", "dicomdir"} <= codes
    assert {"unsupported_transfer_syntax", "decode", "frame_index"} <= codes
    for error in errors:
        assert_clean(str(error))
        # Raised "from None": a logged traceback carries no pydicom message quoting a value.
        assert_clean("".join(traceback.format_exception(error)))
    assert_clean(caplog.text)


def test_reading_a_file_with_malformed_values_logs_and_warns_nothing_identifying(caplog, recwarn):
    ds = samples.us_dataset()
    ds.PatientBirthDate = "19431127 " + samples.PATIENT_NAME  # invalid DA: pydicom warns quoting it
    ds.AcquisitionDate = "2019 " + samples.PATIENT_ID
    data = samples.to_bytes(ds)
    recwarn.clear()  # pydicom warned while the test wrote the file; only reading counts
    caplog.clear()
    caplog.set_level(logging.DEBUG)
    read = dicom.read_dicom(data)
    dicom.decode_frame(read, 0)
    dicom.header_summary(read)
    dicom.patient_key(read, SECRET)
    dicom.acquisition_order(read)
    assert_clean(caplog.text)
    assert_clean(" ".join(str(w.message) for w in recwarn))


def test_pydicom_log_records_never_reach_the_application_logs(caplog):
    """pydicom's warn_and_log quotes header values; its logger and its children are stopped."""
    caplog.set_level(logging.DEBUG)
    for name in ("pydicom", "pydicom.pixels.decoders.base", "pydicom.pixels.utils"):
        logging.getLogger(name).error("Invalid value for VR PN: %r", samples.PATIENT_NAME)
    assert_clean(caplog.text)


def test_patient_key_is_a_keyed_hash_of_id_and_issuer():
    ds = samples.us_dataset()
    key = dicom.patient_key(ds, SECRET)
    assert len(key) == 64 and samples.PATIENT_ID not in key
    assert dicom.patient_key(samples.us_dataset(), SECRET) == key  # same patient, same key
    assert dicom.patient_key(ds, b"another secret of 32 bytes......") != key
    ds.IssuerOfPatientID = "OTHER HOSPITAL"
    assert dicom.patient_key(ds, SECRET) != key  # the same ID from another issuer is another patient


def test_patient_key_falls_back_to_name_and_birth_date():
    ds = samples.us_dataset()
    del ds.PatientID
    key = dicom.patient_key(ds, SECRET)
    ds.PatientName = "  zyqwertson^QUIRINALDA^maribel^^ "
    assert dicom.patient_key(ds, SECRET) == key  # case, spaces and empty components do not matter
    del ds.PatientBirthDate
    assert dicom.patient_key(ds, SECRET) is None  # a name alone would join namesakes


def test_patient_key_refuses_a_short_secret():
    with pytest.raises(ValueError):
        dicom.patient_key(samples.us_dataset(), b"short")


def test_instance_key_recognises_the_same_sop_instance():
    key = dicom.instance_key(samples.us_dataset(), SECRET)
    assert key == dicom.instance_key(samples.us_dataset(), SECRET)
    assert key != dicom.instance_key(samples.us_dataset(identifying=False), SECRET)
    assert samples.SOP_UID not in key


def test_patient_code_is_four_capitals_derived_from_the_key():
    key = dicom.patient_key(samples.us_dataset(), SECRET)
    code = dicom.patient_code(key, set())
    assert len(code) == 4 and code.isalpha() and code.isupper()
    assert dicom.patient_code(key, set()) == code
    other = dicom.patient_code(key, {code})
    assert other != code and len(other) == 4 and other.isupper()
    assert dicom.patient_code(key, {code}) == other  # collisions resolve deterministically too


def test_patient_codes_of_many_patients_never_collide():
    taken: set[str] = set()
    for number in range(3000):
        ds = samples.us_dataset(identifying=False)
        ds.PatientID = f"P{number}"
        code = dicom.patient_code(dicom.patient_key(ds, SECRET), taken)
        assert code not in taken
        taken.add(code)


def test_acquisition_order_sorts_by_date_time_then_instance_and_hides_its_value():
    def dated(date: str, time: str, instance: int):
        ds = samples.us_dataset(identifying=False)
        if date:
            ds.ContentDate, ds.ContentTime = date, time
        ds.InstanceNumber = instance
        return dicom.acquisition_order(ds)

    late = dated("20190314", "1530", 1)
    early = dated("20190314", "093015.25", 9)
    earlier_same_time = dated("20190314", "093015.25", 2)
    undated = dated("", "", 1)
    assert sorted([undated, late, early, earlier_same_time]) == [earlier_same_time, early, late, undated]
    assert "2019" not in repr(late) and "2019" not in str(late)
    ds = samples.us_dataset()
    ds.AcquisitionDateTime = "20180101120000"
    assert dicom.acquisition_order(ds) < dated("20190101", "000000", 1)
