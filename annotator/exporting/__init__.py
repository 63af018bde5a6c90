"""Export the consensus dataset as a ZIP, streamed: one image in memory at a time.

``images/`` always holds the stored PNG bytes unchanged; each format in ``FORMATS`` adds its own
files (``bus_uclm``: ``masks/`` and ``INFO.csv``; ``coco``: ``annotations/instances.json``;
``splits``: patient-level cross-validation folds in ``splits.csv``).
Adding a format is adding a module with a class that has ``key``, ``add(zf, record)`` and
``finish(zf)``.
"""

from annotator.exporting.base import ExportOptions, ExportRecord, iter_zip, write_zip
from annotator.exporting.bus_uclm import BusUclmFormat
from annotator.exporting.coco import CocoFormat
from annotator.exporting.splits import SplitsFormat

FORMATS = {fmt.key: fmt for fmt in (BusUclmFormat, CocoFormat, SplitsFormat)}

__all__ = ["FORMATS", "ExportOptions", "ExportRecord", "iter_zip", "write_zip"]
