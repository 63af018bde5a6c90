"""The ACR BI-RADS ultrasound lexicon (5th edition, 2013) as data, and validation of lesion descriptors.

Pure module, no Django. Another lexicon version is a change to ``LEXICON`` (and
``ASSESSMENT_CATEGORIES``) only: the API, the side panel, the exports and the importers all read
the lexicon from here.

A lesion's descriptors are a dict keyed by descriptor (``shape``, ``margin``, ...). A single-valued
descriptor holds one value (a string); a multi-valued one holds a list of values. An absent key
means "not described". ``validate_descriptors`` returns the canonical form: absent / null / empty
entries dropped, multi-valued lists deduplicated and in lexicon order, so equal descriptions
compare and store equal.
"""

from __future__ import annotations

from dataclasses import dataclass

LEXICON_VERSION = "BI-RADS 5th edition (2013), ultrasound"


@dataclass(frozen=True)
class Descriptor:
    label: str
    # Slug -> label, in the lexicon's order (the order of the side panel and of the exports).
    values: dict[str, str]
    multi: bool = False
    # Values that cannot be combined with any other (margin: circumscribed vs the not-circumscribed kinds).
    exclusive: tuple[str, ...] = ()
    # Required when the curator sets descriptors to "required for submission".
    required: bool = True
    accesskey: str = ""


LEXICON: dict[str, Descriptor] = {
    "shape": Descriptor(
        "Shape",
        {"oval": "Oval", "round": "Round", "irregular": "Irregular"},
        accesskey="s",
    ),
    "orientation": Descriptor(
        "Orientation",
        {"parallel": "Parallel", "not_parallel": "Not parallel"},
        accesskey="o",
    ),
    "margin": Descriptor(
        "Margin",
        {
            "circumscribed": "Circumscribed",
            "indistinct": "Indistinct",
            "angular": "Angular",
            "microlobulated": "Microlobulated",
            "spiculated": "Spiculated",
        },
        multi=True,
        exclusive=("circumscribed",),
        accesskey="m",
    ),
    "echo_pattern": Descriptor(
        "Echo pattern",
        {
            "anechoic": "Anechoic",
            "hyperechoic": "Hyperechoic",
            "complex_cystic_solid": "Complex cystic and solid",
            "hypoechoic": "Hypoechoic",
            "isoechoic": "Isoechoic",
            "heterogeneous": "Heterogeneous",
        },
        accesskey="e",
    ),
    "posterior_features": Descriptor(
        "Posterior features",
        {
            "none": "No posterior features",
            "enhancement": "Enhancement",
            "shadowing": "Shadowing",
            "combined": "Combined pattern",
        },
        accesskey="p",
    ),
    "calcifications": Descriptor(
        "Calcifications",
        {"in_mass": "In a mass", "outside_mass": "Outside of a mass", "intraductal": "Intraductal"},
        multi=True,
        required=False,
        accesskey="c",
    ),
    "associated_features": Descriptor(
        "Associated features",
        {
            "architectural_distortion": "Architectural distortion",
            "duct_changes": "Duct changes",
            "skin_changes": "Skin changes",
            "edema": "Edema",
            "vascularity": "Vascularity",
            "elasticity": "Elasticity assessment",
        },
        multi=True,
        required=False,
        accesskey="f",
    ),
}

ASSESSMENT_CATEGORIES: tuple[str, ...] = ("0", "1", "2", "3", "4A", "4B", "4C", "5", "6")
ASSESSMENT_LABELS: dict[str, str] = {
    "0": "0 - Incomplete: need additional imaging",
    "1": "1 - Negative",
    "2": "2 - Benign",
    "3": "3 - Probably benign",
    "4A": "4A - Low suspicion for malignancy",
    "4B": "4B - Moderate suspicion for malignancy",
    "4C": "4C - High suspicion for malignancy",
    "5": "5 - Highly suggestive of malignancy",
    "6": "6 - Known biopsy-proven malignancy",
}

REQUIRED_KEYS: tuple[str, ...] = tuple(key for key, d in LEXICON.items() if d.required)


class DescriptorError(ValueError):
    """Descriptors or an assessment break the lexicon; ``rule`` is the error code for the API."""

    def __init__(self, rule: str, message: str, *, key: str | None = None):
        super().__init__(message)
        self.rule = rule
        self.message = message
        self.key = key
        self.index: int | None = None  # the lesion at fault, set by the caller that knows it


def _is_empty(value: object) -> bool:
    return value is None or value == "" or (isinstance(value, (list, tuple)) and len(value) == 0)


def validate_descriptors(data: object) -> dict[str, str | list[str]]:
    """Return the canonical descriptors or raise DescriptorError naming the rule and the descriptor."""
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise DescriptorError("descriptor_format", "descriptors must be an object keyed by descriptor")
    out: dict[str, str | list[str]] = {}
    for key, value in data.items():
        desc = LEXICON.get(key) if isinstance(key, str) else None
        if desc is None:
            raise DescriptorError(
                "descriptor_unknown",
                f"unknown descriptor {key!r}; known: {', '.join(LEXICON)}",
                key=str(key),
            )
        if _is_empty(value):
            continue
        allowed = ", ".join(desc.values)
        if desc.multi:
            items = [value] if isinstance(value, str) else value
            if not isinstance(items, (list, tuple)) or not all(isinstance(v, str) for v in items):
                raise DescriptorError("descriptor_format", f"{key} must be a list of values from: {allowed}", key=key)
            for v in items:
                if v not in desc.values:
                    raise DescriptorError(
                        "descriptor_value", f"{key} value {v!r} is not in the lexicon; allowed: {allowed}", key=key
                    )
            chosen = [v for v in desc.values if v in items]
            for ex in desc.exclusive:
                if ex in chosen and len(chosen) > 1:
                    others = ", ".join(v for v in chosen if v != ex)
                    raise DescriptorError(
                        "descriptor_exclusive", f"{key} {ex!r} cannot be combined with {others}", key=key
                    )
            out[key] = chosen
        else:
            if not isinstance(value, str):
                raise DescriptorError("descriptor_format", f"{key} must be one value from: {allowed}", key=key)
            if value not in desc.values:
                raise DescriptorError(
                    "descriptor_value", f"{key} value {value!r} is not in the lexicon; allowed: {allowed}", key=key
                )
            out[key] = value
    # Lexicon order, so that stored JSON and exports do not depend on the client's key order.
    return {key: out[key] for key in LEXICON if key in out}


def validate_assessment(value: object) -> str:
    """Return the assessment category ('' for none) or raise DescriptorError."""
    if value is None or value == "":
        return ""
    text = str(value).strip().upper() if isinstance(value, (str, int)) and not isinstance(value, bool) else None
    if text not in ASSESSMENT_CATEGORIES:
        raise DescriptorError(
            "assessment_value",
            f"assessment must be one of {', '.join(ASSESSMENT_CATEGORIES)}, got {value!r}",
            key="assessment",
        )
    return text


def missing_descriptors(descriptors: dict) -> list[str]:
    """The required descriptor keys absent from canonical ``descriptors``, in lexicon order."""
    return [key for key in REQUIRED_KEYS if _is_empty(descriptors.get(key))]


def describe(descriptors: dict) -> str:
    """One human-readable line, e.g. 'Shape: oval; Margin: angular, spiculated' (remarks, CSV)."""
    parts = []
    for key, desc in LEXICON.items():
        value = descriptors.get(key)
        if _is_empty(value):
            continue
        values = value if isinstance(value, list) else [value]
        parts.append(f"{desc.label}: {', '.join(desc.values[v].lower() for v in values)}")
    return "; ".join(parts)


def lexicon_json() -> dict:
    """The lexicon for the front end (embedded in the annotation page)."""
    return {
        "version": LEXICON_VERSION,
        "descriptors": [
            {
                "key": key,
                "label": d.label,
                "multi": d.multi,
                "exclusive": list(d.exclusive),
                "required": d.required,
                "accesskey": d.accesskey,
                "values": [{"value": v, "label": lab} for v, lab in d.values.items()],
            }
            for key, d in LEXICON.items()
        ],
        "assessment": [{"value": v, "label": ASSESSMENT_LABELS[v]} for v in ASSESSMENT_CATEGORIES],
    }
