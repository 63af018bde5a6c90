"""Export the consensus dataset as a ZIP, streamed: one image in memory at a time.

``images/`` always holds the stored PNG bytes unchanged; each registered format adds its own
files (``bus_uclm``: ``masks/`` and ``INFO.csv``; ``coco``: ``annotations/instances.json``;
``splits``: patient-level cross-validation folds in ``splits.csv``).

Adding a format is adding a module to this package with a class decorated ``@register`` that has
``key``, ``add(zf, record)`` and ``finish(zf)``: every module here is imported below.
"""

import importlib
import pkgutil

from annotator.exporting.base import FORMATS, ExportOptions, ExportRecord, iter_zip, register, write_zip

for _module in pkgutil.iter_modules(__path__):
    if _module.name != "base":
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["FORMATS", "ExportOptions", "ExportRecord", "iter_zip", "register", "write_zip"]
