"""The local MetaStudio: the voice-training API behind a signature-checking gateway."""

from sandbox.metastudio.app import (
    LOCAL_AK,
    LOCAL_PROJECT_ID,
    LOCAL_SK,
    IdentityProvider,
    LocalMetaStudio,
    SeedJob,
)
from sandbox.metastudio.edge import RecordedRequest
from sandbox.metastudio.faults import FaultConfig
from sandbox.metastudio.gateway import TokenValidator
from sandbox.metastudio.store import AuditError, AuditFailure, ReviewPlan

__all__ = [
    "LOCAL_AK",
    "LOCAL_PROJECT_ID",
    "LOCAL_SK",
    "AuditError",
    "AuditFailure",
    "FaultConfig",
    "IdentityProvider",
    "LocalMetaStudio",
    "RecordedRequest",
    "ReviewPlan",
    "SeedJob",
    "TokenValidator",
]
