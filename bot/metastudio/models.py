"""Pydantic models of the MetaStudio voice-training API: job states, jobs, reviews, op-logs.

Field names follow the API's JSON exactly; unknown fields are kept (``extra="allow"``) and
an unknown job state parses to a ``JobState`` of its own raw name (category "unknown"), so a
newer API version never breaks parsing.
"""

from __future__ import annotations

import threading
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from bot.i18n import N_, _


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
    JobState.CREATING: N_("being created"),
    JobState.UPLOADING: N_("uploading training data"),
    JobState.SYSTEM_AUDITING: N_("in automatic review"),
    JobState.AUDITING: N_("in manual review"),
    JobState.AUDIT_FAILED: N_("review failed, waiting for the data to be uploaded again"),
    JobState.WAITING_SPLIT: N_("review passed, waiting for audio splitting"),
    JobState.SPLITTING: N_("review passed, splitting audio"),
    JobState.SPLIT_FAILED: N_("audio splitting failed"),
    JobState.ANNOTATING: N_("review passed, annotating"),
    JobState.WAITING: N_("review passed, waiting for training"),
    JobState.PROCESSING: N_("training"),
    JobState.RESULT_REVIEW: N_("training result under review"),
    JobState.USER_RESULT_REVIEW: N_("training result awaiting your review"),
    JobState.USER_REVIEW_REJECT: N_("training result rejected by the user"),
    JobState.FAILED: N_("failed"),
    JobState.SUCCEED: N_("succeeded"),
}

# States from which a submit (commit) is accepted: the job exists and its data is uploaded
# but has not gone into review yet, or review failed and the data was uploaded again.
SUBMITTABLE_STATES = frozenset({JobState.CREATING, JobState.UPLOADING, JobState.AUDIT_FAILED})
UNDER_REVIEW_STATES = frozenset({JobState.SYSTEM_AUDITING, JobState.AUDITING})
TERMINAL_STATES = frozenset(
    {JobState.SUCCEED, JobState.FAILED, JobState.SPLIT_FAILED, JobState.USER_REVIEW_REJECT}
)


# The categories in words, as a status reply shows them next to the state.
CATEGORY_WORDS: dict[StateCategory, str] = {
    StateCategory.PRE_SUBMIT: N_("pre-submit"),
    StateCategory.UNDER_REVIEW: N_("under review"),
    StateCategory.REVIEW_FAILED: N_("review failed"),
    StateCategory.REVIEW_PASSED: N_("review passed, preparing"),
    StateCategory.TRAINING: N_("training"),
    StateCategory.SUCCEEDED: N_("succeeded"),
    StateCategory.FAILED: N_("failed"),
    StateCategory.UNKNOWN: N_("unknown"),
}


def category_of(state: JobState) -> StateCategory:
    return STATE_CATEGORY.get(state, StateCategory.UNKNOWN)


def category_words(category: StateCategory) -> str:
    """The category in words, in the language spoken now."""
    return _(CATEGORY_WORDS[category])


def state_words(state: JobState) -> str:
    """The state in words, in the language spoken now; a state newer than the bot is shown
    by its raw name."""
    if state in STATE_WORDS:
        return _(STATE_WORDS[state])
    return _("in state {state}").format(state=state.value)


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


class JobType(StrEnum):
    """A job's ``job_type``. A type newer than SDK 3.1.219 becomes a pseudo-member of its
    raw name, as ``JobState`` does."""

    BASIC = "BASIC"
    MIDDLE = "MIDDLE"
    ADVANCE = "ADVANCE"
    THIRD_PARTY = "THIRD_PARTY"
    THIRD_PARTY_LJZN = "THIRD_PARTY_LJZN"
    FLEXUS = "FLEXUS"

    @classmethod
    def _missing_(cls, value: object) -> JobType | None:
        if not isinstance(value, str) or not value.strip():
            return None
        member = str.__new__(cls, value)
        member._name_ = value
        member._value_ = value
        return member


# The ``resource_available_nums`` entry that counts trainings of each type left.
QUOTA_FIELD: dict[JobType, str] = {
    JobType.BASIC: "basic",
    JobType.MIDDLE: "middle",
    JobType.ADVANCE: "advance",
    JobType.FLEXUS: "flexus",
    JobType.THIRD_PARTY: "third_party_cmww",
}

# ``assess_result``'s checks, in the order MetaStudio lists them.
ASSESS_CHECKS = ("speed", "sound", "snr", "reverb", "dnsmos_ovrl", "dnsmos_bak")


class AssessProperty(_ApiModel):
    """One check of MetaStudio's assessment of the uploaded audio. ``status`` says whether
    the figure is out of range: 0 in range, anything else out of it."""

    expected: str | None = None
    actual: str | None = None
    suggestion: str | None = None
    suggestion_en: str | None = None
    status: int | None = None

    @property
    def out_of_range(self) -> bool:
        return bool(self.status)


class AssessResult(_ApiModel):
    speed: AssessProperty | None = None
    sound: AssessProperty | None = None
    snr: AssessProperty | None = None
    reverb: AssessProperty | None = None
    dnsmos_ovrl: AssessProperty | None = None
    dnsmos_bak: AssessProperty | None = None
    # The overall advice. The API documents one string; an English one beside it, should
    # MetaStudio send it, is shown to those who read English, as each check's is.
    suggestion: str | None = None
    suggestion_en: str | None = None

    def checks(self) -> list[tuple[str, AssessProperty]]:
        """The checks MetaStudio reported, by API name, in its order."""
        found = [(name, getattr(self, name)) for name in ASSESS_CHECKS]
        return [(name, check) for name, check in found if check is not None]

    def out_of_range(self) -> list[tuple[str, AssessProperty]]:
        return [(name, check) for name, check in self.checks() if check.out_of_range]


class AllocatedResource(_ApiModel):
    resource_id: str | None = None
    charge_mode: str | None = None
    expire_time: str | None = None


class TrainingJob(_ApiModel):
    job_id: str
    state: JobState
    job_type: JobType | None = None
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
    voice_authorization_url: str | None = None
    training_input_source_url: str | None = None
    allocated_resource: AllocatedResource | None = None
    is_ondemand_resource: bool | None = None
    assess_result: AssessResult | None = None

    @property
    def has_authorization(self) -> bool:
        return bool(self.voice_authorization_url and self.voice_authorization_url.strip())

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


class ResourceAvailableNums(_ApiModel):
    flexus: int | None = None
    basic: int | None = None
    middle: int | None = None
    middle_on_demand: int | None = None
    advance: int | None = None
    third_party_cmww: int | None = None


class TrainingResource(_ApiModel):
    operation_type: str | None = None
    resource_source: str | None = None
    asset_id: str | None = None
    resource_id: str | None = None
    resource_nums: int | None = None
    resource_available_nums: int | None = None
    resource_type: str | None = None
    charge_mode: str | None = None
    expire_time: str | None = None
    status: int | None = None


class TrainingQuotas(_ApiModel):
    """``GET .../voice-training-manage/quotas``: trainings left per type, and each resource."""

    count: int = 0
    resource_available_nums: ResourceAvailableNums = Field(default_factory=ResourceAvailableNums)
    resources: list[TrainingResource] = Field(default_factory=list)

    def left_for(self, job_type: JobType | None) -> int | None:
        """Trainings of ``job_type`` left; None when the type has no counter here."""
        field = QUOTA_FIELD.get(job_type) if job_type is not None else None
        if field is None:
            return None
        value = getattr(self.resource_available_nums, field)
        return value if isinstance(value, int) else None
