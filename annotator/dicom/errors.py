"""The one error type of the DICOM layer, and the guards that keep header values out of messages and logs.

pydicom's own messages can quote header values (an invalid date, a name), so they are never passed
on: callers raise `DicomError(...) from None`, wrap pydicom calls in `quiet()`, and pydicom's
logger is silenced when this package is imported.
"""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

from pydicom.uid import UID

# Defined terms are short capitals; anything else in (0008,0060) is not quoted back.
_MODALITY_RE = re.compile(r"^[A-Z]{2,4}$")
DICOM_UID_ROOT = "1.2.840.10008."


class DicomError(ValueError):
    """A file the importer refuses. `code` is stable for callers; the message is safe to show and log."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _silence_pydicom() -> None:
    """pydicom logs warnings that quote header values ("Invalid value for VR DA: '19700101'").

    This module is the only user of pydicom in the project, so its records are stopped at the
    "pydicom" logger (and its children, which inherit the level): nothing it says reaches the
    application's handlers.
    """
    log = logging.getLogger("pydicom")
    log.setLevel(logging.CRITICAL + 1)
    log.propagate = False
    if not any(isinstance(h, logging.NullHandler) for h in log.handlers):
        log.addHandler(logging.NullHandler())


_silence_pydicom()


@contextmanager
def quiet() -> Iterator[None]:
    """Drop pydicom's warnings (they can quote values) while reading or decoding.

    `warnings.catch_warnings` swaps the process-wide filter list, so in a threaded server another
    thread's warnings may be dropped meanwhile too; the importer runs in one thread (RQ worker or
    sync gunicorn worker), where this is exact.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def transfer_syntax_name(uid: str) -> str:
    """A standard transfer syntax's name; a private one is not quoted (its UID could be anything)."""
    name = UID(uid).name  # the dictionary's name, or the UID itself when pydicom does not know it
    return name if name != uid else "a private or unknown transfer syntax"


def modality_label(value: object) -> str:
    text = str(value or "").strip()
    return text if _MODALITY_RE.match(text) else "unrecognised"
