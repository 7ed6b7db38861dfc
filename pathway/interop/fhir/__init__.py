"""FHIR R4B: export one enrollment as a Bundle (`bundle`), check a bundle (`check`), and
enroll from a referral ServiceRequest (`referral`). What is exported for each kind of
observation comes from the workflow file's `fhir:` section; the vocabulary is in `codes`."""

from pathway.interop.fhir.bundle import build_bundle, export_bundle, export_json
from pathway.interop.fhir.check import check_bundle, validate_bundle
from pathway.interop.fhir.codes import (
    BASE,
    CPT,
    EPISODE_STATUS_DOC,
    LATERALITY_EXTENSION,
    LOINC,
    ORDER_INTENTS,
    PATIENT_SYSTEM,
    PLAN_DEFINITION_BASE,
    SNOMED,
    FhirError,
    episode_status,
)
from pathway.interop.fhir.referral import (
    enroll_referral,
    import_file,
    import_referral,
    read_file,
    referral_of,
)

__all__ = [
    "BASE",
    "CPT",
    "EPISODE_STATUS_DOC",
    "LATERALITY_EXTENSION",
    "LOINC",
    "ORDER_INTENTS",
    "PATIENT_SYSTEM",
    "PLAN_DEFINITION_BASE",
    "SNOMED",
    "FhirError",
    "build_bundle",
    "check_bundle",
    "enroll_referral",
    "episode_status",
    "export_bundle",
    "export_json",
    "import_file",
    "import_referral",
    "read_file",
    "referral_of",
    "validate_bundle",
]
