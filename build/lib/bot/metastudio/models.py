"""Pydantic models of the MetaStudio voice-training API: job states, jobs, reviews, op-logs.

Field names follow the API's JSON exactly; unknown fields are kept (``extra="allow"``) and
an unknown job state parses to a ``JobState`` of its own raw name (category "unknown"), so a
newer API version never breaks parsing.
"""

from __future__ import annotations

import threading
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class JobState(StrEnum):
    """A job's ``state``. A name MetaStudio added after SDK 3.1.219 becomes a pseudo-member
    carrying the raw name (``known`` is False): one new state must not fail a whole page."""

    CREATING = "CREATING"
    UPLOADING = "UPLOADING"
    SYSTEM_AUDITING = "SYSTEM_AUDITING"
    AUDITING = "AUDITING"
    AUDIT_FAILED = "AUDIT_FAILED"
    WAITING_SPLIT = "WAITING_SPLIT"
    SPLITTING = "SPLITTING"
    SPLIT_FAILED = "SPLIT_FAILED"
    ANNOTATING = "ANNOTATING"
    WAITING = "WAITING"
    PROCESSING = "PROCESSING"
    RESULT_REVIEW = "RESULT_REVIEW"
    USER_RESULT_REVIEW = "USER_RESULT_REVIEW"
    USER_REVIEW_REJECT = "USER_REVIEW_REJECT"
    FAILED = "FAILED"
    SUCCEED = "SUCCEED"

    @classmethod
    def _missing_(cls, value: object) -> JobState | None:
        if not isinstance(value, str) or not value.strip():
            return None
        with _UNKNOWN_LOCK:
            member = _UNKNOWN_STATES.get(value)
            if member is None:
                member = str.__new__(cls, value)
                member._name_ = value
                member._value_ = value
                # Members compare as their names; the cache only saves allocations.
                if len(_UNKNOWN_STATES) < _MAX_UNKNOWN_STATES:
                    _UNKNOWN_STATES[value] = member
        return member

    @property
    def known(self) -> bool:
        return self._name_ in type(self).__members__


_MAX_UNKNOWN_STATES = 256
_UNKNOWN_STATES: dict[str, JobState] = {}
_UNKNOWN_LOCK = threading.Lock()


class StateCategory(StrEnum):
    PRE_SUBMIT = "pre-submit"
    UNDER_REVIEW = "under review"
    REVIEW_FAILED = "review failed"
    REVIEW_PASSED = "review passed, preparing"
    TRAINING = "training"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    # A state this bot does not know (a newer API): neither under review nor finished.
    UNKNOWN = "unknown"


STATE_CATEGORY: dict[JobState, StateCategory] = {
    JobState.CREATING: StateCategory.PRE_SUBMIT,
    JobState.UPLOADING: StateCategory.PRE_SUBMIT,
    JobState.SYSTEM_AUDITING: StateCategory.UNDER_REVIEW,
    JobState.AUDITING: StateCategory.UNDER_REVIEW,
    JobState.AUDIT_FAILED: StateCategory.REVIEW_FAILED,
    JobState.WAITING_SPLIT: StateCategory.REVIEW_PASSED,
    JobState.SPLITTING: StateCategory.REVIEW_PASSED,
    JobState.ANNOTATING: StateCategory.REVIEW_PASSED,
    JobState.WAITING: StateCategory.REVIEW_PASSED,
    JobState.SPLIT_FAILED: StateCategory.FAILED,
    JobState.PROCESSING: StateCategory.TRAINING,
    JobState.RESULT_REVIEW: StateCategory.TRAINING,
    JobState.USER_RESULT_REVIEW: StateCategory.TRAINING,
    JobState.USER_REVIEW_REJECT: StateCategory.FAILED,
    JobState.FAILED: StateCategory.FAILED,
    JobState.SUCCEED: StateCategory.SUCCEEDED,
}

STATE_WORDS: dict[JobState, str] = {
    JobState.CREATING: "being created",
    JobState.UPLOADING: "uploading training data",
    JobState.SYSTEM_AUDITING: "in automatic review",
    JobState.AUDITING: "in manual review",
    JobState.AUDIT_FAILED: "review failed, waiting for the data to be uploaded again",
    JobState.WAITING_SPLIT: "review passed, waiting for audio splitting",
    JobState.SPLITTING: "review passed, splitting audio",
    JobState.SPLIT_FAILED: "audio splitting failed",
    JobState.ANNOTATING: "review passed, annotating",
    JobState.WAITING: "review passed, waiting for training",
    JobState.PROCESSING: "training",
    JobState.RESULT_REVIEW: "training result under review",
    JobState.USER_RESULT_REVIEW: "training result awaiting your review",
    JobState.USER_REVIEW_REJECT: "training result rejected by the user",
    JobState.FAILED: "failed",
    JobState.SUCCEED: "succeeded",
}

# States from which a submit (commit) is accepted: the job exists and its data is uploaded
# but has not gone into review yet, or review failed and the data was uploaded again.
SUBMITTABLE_STATES = frozenset({JobState.CREATING, JobState.UPLOADING, JobState.AUDIT_FAILED})
UNDER_REVIEW_STATES = frozenset({JobState.SYSTEM_AUDITING, JobState.AUDITING})
TERMINAL_STATES = frozenset(
    {JobState.SUCCEED, JobState.FAILED, JobState.SPLIT_FAILED, JobState.USER_REVIEW_REJECT}
)


def category_of(state: JobState) -> StateCategory:
    return STATE_CATEGORY.get(state, StateCategory.UNKNOWN)


def state_words(state: JobState) -> str:
    """The state in words; a state newer than the bot is shown by its raw name."""
    return STATE_WORDS.get(state, f"in state {state.value}")


class JobTag(StrEnum):
    ECOMMERCE = "ECOMMERCE"
    NEWS = "NEWS"
    MARKETING = "MARKETING"
    LIVE = "LIVE"
    EDUCATION = "EDUCATION"
    CUSTOMER = "CUSTOMER"
    STORYTELLING = "STORYTELLING"


class Sex(StrEnum):
    FEMALE = "FEMALE"
    MALE = "MALE"


class Language(StrEnum):
    CN = "CN"
    EN = "EN"


class _ApiModel(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class CommitJobRequest(_ApiModel):
    """Body of ``POST .../user/jobs/{job_id}`` (every field optional, as the API says)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tag: JobTag | None = None
    description: str | None = None
    sex: Sex | None = None
    voice_name: str | None = None
    language: Language | None = None
    phone: str | None = None
    app_user_id: str | None = None
    output_language: str | None = None
    custom_text: str | None = None

    def body(self) -> dict[str, str]:
        return {k: str(v) for k, v in self.model_dump(mode="json", exclude_none=True).items()}


class TrainingJob(_ApiModel):
    job_id: str
    state: JobState
    job_type: str | None = None
    app_user_id: str | None = None
    voice_name: str | None = None
    sex: str | None = None
    language: str | None = None
    tag: str | None = None
    phone: str | None = None
    output_language: str | None = None
    batch_name: str | None = None
    create_type: str | None = None
    reject_times: int | None = None
    asset_id: str | None = None
    job_failed_code: str | None = None
    job_failed_reason: str | None = None
    create_time: int | None = None
    lastupdate_time: int | None = None

    @property
    def category(self) -> StateCategory:
        return category_of(self.state)


class JobList(_ApiModel):
    count: int = 0
    jobs: list[TrainingJob] = Field(default_factory=list)


class SystemAuditError(_ApiModel):
    audio_name: str | None = None
    text_name: str | None = None
    error_code: str | None = None
    error_message: str | None = None


class SystemAuditResult(_ApiModel):
    audit_time: int | None = None
    errors: list[SystemAuditError] = Field(default_factory=list)


class AdminAuditResult(_ApiModel):
    message: str | None = None
    attachment_name: str | None = None
    attachment_url: str | None = None
    audit_time: int | None = None


class AuditResult(_ApiModel):
    system_audit_result: SystemAuditResult | None = None
    admin_audit_result: AdminAuditResult | None = None


class OperationExternalInfo(_ApiModel):
    review_id_list: list[str] = Field(default_factory=list)
    algorithm_failure_reason: str | None = None
    admin_audit_failure_reason: str | None = None


class OperationLog(_ApiModel):
    time: int | None = None
    action: str
    operator: str | None = None
    external_info: OperationExternalInfo | None = None


class OperationLogList(_ApiModel):
    count: int = 0
    operations: list[OperationLog] = Field(default_factory=list)
