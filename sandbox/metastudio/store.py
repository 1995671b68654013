"""Training jobs of the local MetaStudio and their review, computed lazily from timestamps.

A commit stores the review's whole timeline (when each state and op-log is reached);
reads find the current point with a bisect. No timer or task exists per job, so any number
of jobs under review costs nothing until someone looks at them. One lock guards the store
because the server's event loop thread and the test thread both use it.
"""

from __future__ import annotations

import threading
import time
import uuid
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from bot.metastudio.models import (
    SUBMITTABLE_STATES,
    UNDER_REVIEW_STATES,
    JobState,
    JobTag,
    Language,
    Sex,
)
from sandbox.metastudio import errors
from sandbox.metastudio.assess import assess_result

Outcome = Literal["pass", "fail"]
Json = dict[str, Any]

COMMIT_FIELDS = (
    "tag",
    "description",
    "sex",
    "voice_name",
    "language",
    "phone",
    "app_user_id",
    "output_language",
    "custom_text",
)
ENUM_FIELDS: dict[str, frozenset[str]] = {
    "tag": frozenset(JobTag),
    "sex": frozenset(Sex),
    "language": frozenset(Language),
}
POST_REVIEW_STATES = frozenset(
    {
        JobState.WAITING_SPLIT,
        JobState.SPLITTING,
        JobState.SPLIT_FAILED,
        JobState.ANNOTATING,
        JobState.WAITING,
        JobState.PROCESSING,
        JobState.RESULT_REVIEW,
        JobState.USER_RESULT_REVIEW,
        JobState.USER_REVIEW_REJECT,
        JobState.FAILED,
        JobState.SUCCEED,
    }
)


class ReviewPlan(BaseModel):
    """How long each review stage takes (seconds of the store's clock).

    ``train_delay=None`` leaves a passed job in WAITING; otherwise it moves to PROCESSING
    after ``wait_delay`` and ``train_delay`` later to SUCCEED (with an asset id) or, with
    ``train_outcome="fail"``, to FAILED (with ``job_failed_code`` and ``job_failed_reason``).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    system_delay: float = Field(default=5.0, ge=0.0)
    admin_delay: float = Field(default=5.0, ge=0.0)
    wait_delay: float = Field(default=0.0, ge=0.0)
    train_delay: float | None = Field(default=None, ge=0.0)
    train_outcome: Literal["succeed", "fail"] = "succeed"


# The local service's own code for a training failure (the real codes are not documented).
TRAINING_FAILED_CODE = "MSS.41000030"
TRAINING_FAILED_REASON = "training failed: the audio could not be aligned with the text"


class AuditError(BaseModel):
    """One finding of the automatic review (``system_audit_result.errors[]``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    audio_name: str
    text_name: str
    error_code: str
    error_message: str


class AuditFailure(BaseModel):
    """Why a job planned to fail review fails, and at which stage."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    stage: Literal["system", "admin"] = "admin"
    errors: tuple[AuditError, ...] = ()
    admin_message: str = ""
    attachment_name: str | None = None
    attachment_url: str | None = None


DEFAULT_FAILURE = AuditFailure(
    stage="admin",
    errors=(
        AuditError(
            audio_name="audio_3.wav",
            text_name="text_3.txt",
            error_code="MSS.12000103",
            error_message="signal-to-noise ratio too low",
        ),
    ),
    admin_message="The authorization letter is unsigned",
)


@dataclass(frozen=True, slots=True)
class _Log:
    at: float
    action: str
    operator: str
    review_id: str | None = None
    algorithm_failure_reason: str | None = None
    admin_audit_failure_reason: str | None = None


@dataclass(frozen=True, slots=True)
class _SystemResult:
    at: float
    errors: tuple[AuditError, ...]


@dataclass(frozen=True, slots=True)
class _AdminResult:
    at: float
    message: str
    attachment_name: str | None
    attachment_url: str | None


@dataclass(frozen=True, slots=True)
class _Step:
    at: float
    state: JobState
    logs: tuple[_Log, ...] = ()
    rejected: bool = False
    system_result: _SystemResult | None = None
    admin_result: _AdminResult | None = None
    asset_id: str | None = None
    # (job_failed_code, job_failed_reason) of a step into FAILED.
    failure: tuple[str, str] | None = None


@dataclass(slots=True)
class _Job:
    job_id: str
    seq: int
    created: float
    updated: float
    state: JobState
    outcome: Outcome
    failure: AuditFailure | None
    fields: dict[str, str | None]
    reject_times: int = 0
    commits: int = 0
    rounds: int = 0
    asset_id: str | None = None
    failed_code: str | None = None
    failed_reason: str | None = None
    logs: list[_Log] = field(default_factory=list)
    system_result: _SystemResult | None = None
    admin_result: _AdminResult | None = None
    timeline: tuple[_Step, ...] = ()
    step_times: tuple[float, ...] = ()
    # Fields of the job detail that no review step changes.
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _View:
    """A job as of one instant: its base plus the review steps already reached."""

    job: _Job
    reached: tuple[_Step, ...]

    @property
    def state(self) -> JobState:
        return self.reached[-1].state if self.reached else self.job.state

    @property
    def updated(self) -> float:
        return self.reached[-1].at if self.reached else self.job.updated

    @property
    def reject_times(self) -> int:
        return self.job.reject_times + sum(1 for s in self.reached if s.rejected)

    @property
    def asset_id(self) -> str | None:
        for step in reversed(self.reached):
            if step.asset_id:
                return step.asset_id
        return self.job.asset_id

    @property
    def failure(self) -> tuple[str | None, str | None]:
        for step in reversed(self.reached):
            if step.failure is not None:
                return step.failure
        return self.job.failed_code, self.job.failed_reason

    def logs(self) -> list[_Log]:
        return [*self.job.logs, *(log for s in self.reached for log in s.logs)]

    def system_result(self) -> _SystemResult | None:
        for step in reversed(self.reached):
            if step.system_result is not None:
                return step.system_result
        return self.job.system_result

    def admin_result(self) -> _AdminResult | None:
        for step in reversed(self.reached):
            if step.admin_result is not None:
                return step.admin_result
        return self.job.admin_result


def _reasons(failure: AuditFailure) -> str:
    return "; ".join(f"{e.audio_name}: {e.error_message}" for e in failure.errors)


def review_timeline(
    job_id: str,
    round_no: int,
    start: float,
    plan: ReviewPlan,
    outcome: Outcome,
    failure: AuditFailure | None,
) -> tuple[_Step, ...]:
    """Every state and op-log one review round reaches, with the time it reaches them."""
    review_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"review:{job_id}:{round_no}"))
    steps = [_Step(start, JobState.SYSTEM_AUDITING, (_Log(start, "COMMIT_JOB", "USER"),))]
    at = start + plan.system_delay
    fail = failure if outcome == "fail" else None
    if fail is not None and fail.stage == "system":
        reasons = _reasons(fail)
        log = _Log(at, "AUDIT_NOT_PASS", "SYSTEM", review_id, algorithm_failure_reason=reasons)
        steps.append(_Step(at, JobState.AUDIT_FAILED, (log,), True, _SystemResult(at, fail.errors)))
        return tuple(steps)
    system_errors = fail.errors if fail is not None else ()
    steps.append(
        _Step(
            at,
            JobState.AUDITING,
            (_Log(at, "SYSTEM_AUDIT_PASS", "SYSTEM", review_id),),
            system_result=_SystemResult(at, system_errors),
        )
    )
    at += plan.admin_delay
    if fail is not None:
        message = fail.admin_message or "review not passed"
        log = _Log(at, "AUDIT_NOT_PASS", "ADMIN", review_id, admin_audit_failure_reason=message)
        admin = _AdminResult(at, message, fail.attachment_name, fail.attachment_url)
        steps.append(_Step(at, JobState.AUDIT_FAILED, (log,), True, admin_result=admin))
        return tuple(steps)
    steps.append(
        _Step(
            at,
            JobState.WAITING,
            (_Log(at, "ADMIN_AUDIT_PASS", "ADMIN", review_id),),
            admin_result=_AdminResult(at, "approved", None, None),
        )
    )
    if plan.train_delay is None:
        return tuple(steps)
    at += plan.wait_delay
    steps.append(_Step(at, JobState.PROCESSING))
    at += plan.train_delay
    if plan.train_outcome == "fail":
        steps.append(
            _Step(at, JobState.FAILED, failure=(TRAINING_FAILED_CODE, TRAINING_FAILED_REASON))
        )
        return tuple(steps)
    asset_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"asset:{job_id}:{round_no}"))
    done = tuple(
        _Log(at, action, "SYSTEM")
        for action in ("TRAINING_FINISH", "UPLOADING_MODEL", "COMPLETE_JOB")
    )
    steps.append(_Step(at, JobState.SUCCEED, done, asset_id=asset_id))
    return tuple(steps)


@dataclass(frozen=True, slots=True)
class ListQuery:
    offset: int = 0
    limit: int = 10
    states: frozenset[JobState] | None = None
    job_id: str | None = None
    voice_name: str | None = None
    tag: str | None = None
    job_type: str | None = None
    batch_name: str | None = None
    sort_key: Literal["create_time", "update_time"] = "create_time"
    sort_dir: Literal["asc", "desc"] = "desc"


class JobStore:
    """Jobs by id. All public methods are thread-safe and O(1) except ``list``/``stats``."""

    def __init__(
        self,
        review: ReviewPlan | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[str, _Job] = {}
        self._clock = clock
        self._offset = 0.0
        self._mono0 = clock()
        self._wall0 = wall_clock()
        self._seq = 0
        self.review = review or ReviewPlan()
        self.total_commits = 0
        # A newer API: documented states reported under a newer, finer name. A list filter
        # naming either the old or the new name matches them.
        self._newer_names: dict[JobState, str] = {}

    # clock ---------------------------------------------------------------------------------

    def _now(self) -> float:
        return self._clock() + self._offset

    def advance(self, seconds: float) -> None:
        """Move the store's clock forward (review stages are timed by it)."""
        with self._lock:
            self._offset += seconds

    def _ms(self, mono: float) -> int:
        return int((self._wall0 + (mono - self._mono0)) * 1000)

    def report_state_as(self, state: JobState, name: str | None) -> None:
        """Report jobs in ``state`` as ``name`` from now on (None: by its own name again)."""
        with self._lock:
            if name is None:
                self._newer_names.pop(state, None)
            else:
                self._newer_names[state] = name

    def knows_state(self, name: str) -> bool:
        """Whether a list filter may name ``name``: a documented state or a newer one."""
        with self._lock:
            return name in JobState.__members__ or name in self._newer_names.values()

    def _reported(self, state: JobState) -> str:
        return self._newer_names.get(state, state.value)

    # writes --------------------------------------------------------------------------------

    def seed(
        self,
        job_id: str | None = None,
        *,
        state: JobState = JobState.UPLOADING,
        voice_name: str = "demo",
        outcome: Outcome = "pass",
        failure: AuditFailure | None = None,
        app_user_id: str | None = None,
        sex: str = "FEMALE",
        language: str = "CN",
        tag: str | None = None,
        job_type: str = "BASIC",
        batch_name: str | None = None,
        created_ago: float = 0.0,
        assess_out_of_range: Iterable[str] = (),
        authorization: bool = True,
        reject_times_before: int = 0,
        allocated: bool = False,
    ) -> str:
        """``assess_out_of_range``: the audio checks out of range; ``authorization``: the
        voice owner's authorization letter was uploaded; ``reject_times_before``: how many
        reviews the job failed before (at least what its seeded state implies);
        ``allocated``: a training resource is already allocated."""
        job_id = job_id or str(uuid.uuid4())
        state = JobState(state)
        if outcome == "fail" and failure is None:
            failure = DEFAULT_FAILURE
        with self._lock:
            if job_id in self._jobs:
                raise ValueError(f"job {job_id} already exists")
            now = self._now()
            created = now - created_ago
            self._seq += 1
            job = _Job(
                job_id=job_id,
                seq=self._seq,
                created=created,
                updated=created,
                state=state,
                outcome=outcome,
                failure=failure,
                fields={
                    "voice_name": voice_name,
                    "sex": sex,
                    "language": language,
                    "tag": tag,
                    "app_user_id": app_user_id,
                    "batch_name": batch_name,
                    "job_type": job_type,
                    "create_type": "PACKAGE",
                },
            )
            job.detail = _detail(job_id, created_ago, assess_out_of_range, authorization, allocated)
            job.logs.append(_Log(created, "CREATE_JOB", "USER"))
            self._seed_history(job, now)
            # The count of every review the job failed, the seeded history's included.
            job.reject_times = max(job.reject_times, reject_times_before)
            self._jobs[job_id] = job
        return job_id

    def _seed_history(self, job: _Job, now: float) -> None:
        """Give a job seeded past UPLOADING the history that would have led there."""
        if job.state in UNDER_REVIEW_STATES:
            elapsed = self.review.system_delay if job.state is JobState.AUDITING else 0.0
            self._start_review(job, now - elapsed)
            return
        if job.state is JobState.AUDIT_FAILED:
            failure = job.failure or DEFAULT_FAILURE
            steps = review_timeline(
                job.job_id,
                0,
                job.created,
                ReviewPlan(system_delay=0.0, admin_delay=0.0),
                "fail",
                failure,
            )
            self._fold(job, steps)
        elif job.state in POST_REVIEW_STATES:
            steps = review_timeline(
                job.job_id,
                0,
                job.created,
                ReviewPlan(system_delay=0.0, admin_delay=0.0),
                "pass",
                None,
            )
            self._fold(job, steps)
        if job.state is JobState.SUCCEED:
            job.asset_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"asset:{job.job_id}:0"))
        if job.state in (JobState.FAILED, JobState.SPLIT_FAILED):
            job.failed_code = TRAINING_FAILED_CODE
            job.failed_reason = TRAINING_FAILED_REASON

    def _fold(self, job: _Job, steps: Iterable[_Step]) -> None:
        """Make reached review steps part of the job's settled history."""
        final = job.state
        for step in steps:
            job.logs.extend(step.logs)
            job.reject_times += step.rejected
            job.system_result = step.system_result or job.system_result
            job.admin_result = step.admin_result or job.admin_result
            job.asset_id = step.asset_id or job.asset_id
            job.updated = step.at
            final = step.state
        if job.state in SUBMITTABLE_STATES or job.state in UNDER_REVIEW_STATES:
            job.state = final

    def _start_review(self, job: _Job, start: float) -> None:
        job.rounds += 1
        job.timeline = review_timeline(
            job.job_id, job.rounds, start, self.review, job.outcome, job.failure
        )
        job.step_times = tuple(step.at for step in job.timeline)

    def commit(self, job_id: str, body: Json, header_user_id: str | None) -> None:
        """Submit a job for review; raises ApiError when absent or not submittable."""
        with self._lock:
            job = self._get(job_id)
            now = self._now()
            view = self._view(job, now)
            if view.state not in SUBMITTABLE_STATES:
                raise errors.not_submittable()
            job.logs, job.reject_times = view.logs(), view.reject_times
            job.system_result, job.admin_result = view.system_result(), view.admin_result()
            job.state, job.updated = view.state, now
            job.timeline, job.step_times = (), ()
            for name in COMMIT_FIELDS:
                if body.get(name) is not None:
                    job.fields[name] = body[name]
            if header_user_id and not body.get("app_user_id"):
                job.fields["app_user_id"] = header_user_id
            job.commits += 1
            self.total_commits += 1
            self._start_review(job, now)

    def set_outcome(
        self, job_id: str, outcome: Outcome, failure: AuditFailure | None = None
    ) -> None:
        """Decide the job's next review round (a round already under way keeps its plan)."""
        if outcome == "fail" and failure is None:
            failure = DEFAULT_FAILURE
        with self._lock:
            job = self._get(job_id)
            job.outcome, job.failure = outcome, failure

    # reads ---------------------------------------------------------------------------------

    def _get(self, job_id: str) -> _Job:
        job = self._jobs.get(job_id)
        if job is None:
            raise errors.job_not_found()
        return job

    @staticmethod
    def _view(job: _Job, now: float) -> _View:
        if not job.timeline:
            return _View(job, ())
        return _View(job, job.timeline[: bisect_right(job.step_times, now)])

    def _job_json(self, view: _View) -> Json:
        job = view.job
        state = view.state
        data: Json = {
            "job_id": job.job_id,
            "job_type": job.fields.get("job_type"),
            "state": self._reported(state),
            "voice_name": job.fields.get("voice_name"),
            "sex": job.fields.get("sex"),
            "language": job.fields.get("language"),
            "tag": job.fields.get("tag"),
            "app_user_id": job.fields.get("app_user_id"),
            "phone": job.fields.get("phone"),
            "description": job.fields.get("description"),
            "output_language": job.fields.get("output_language"),
            "batch_name": job.fields.get("batch_name"),
            "create_type": job.fields.get("create_type"),
            "reject_times": view.reject_times,
            "create_time": self._ms(job.created),
            "lastupdate_time": self._ms(view.updated),
            "is_remake": False,
            "is_ondemand_resource": False,
            **job.detail,
        }
        if state is JobState.SUCCEED:
            data["asset_id"] = view.asset_id
        if state in (JobState.FAILED, JobState.SPLIT_FAILED):
            data["job_failed_code"], data["job_failed_reason"] = view.failure
        return {k: v for k, v in data.items() if v is not None}

    def job(self, job_id: str) -> Json:
        with self._lock:
            job = self._get(job_id)
            return self._job_json(self._view(job, self._now()))

    def state(self, job_id: str) -> JobState:
        with self._lock:
            return self._view(self._get(job_id), self._now()).state

    def commit_count(self, job_id: str) -> int:
        with self._lock:
            return self._get(job_id).commits

    def __contains__(self, job_id: object) -> bool:
        with self._lock:
            return job_id in self._jobs

    def __len__(self) -> int:
        with self._lock:
            return len(self._jobs)

    def list(self, query: ListQuery) -> Json:
        with self._lock:
            now = self._now()
            views = [self._view(job, now) for job in self._jobs.values() if _prefilter(job, query)]
            if query.states is not None:
                older = {new: old for old, new in self._newer_names.items()}
                wanted = {older.get(state.value, state) for state in query.states}
                views = [v for v in views if v.state in wanted]
            if query.sort_key == "update_time":
                views.sort(key=lambda v: (v.updated, v.job.seq), reverse=query.sort_dir == "desc")
            else:
                views.sort(
                    key=lambda v: (v.job.created, v.job.seq), reverse=query.sort_dir == "desc"
                )
            page = views[query.offset : query.offset + query.limit]
            return {"count": len(views), "jobs": [self._job_json(v) for v in page]}

    def audit_result(self, job_id: str) -> Json:
        with self._lock:
            view = self._view(self._get(job_id), self._now())
            system, admin = view.system_result(), view.admin_result()
            result: Json = {}
            if system is not None:
                result["system_audit_result"] = {
                    "audit_time": self._ms(system.at),
                    "errors": [e.model_dump() for e in system.errors],
                }
            if admin is not None:
                entry: Json = {"message": admin.message, "audit_time": self._ms(admin.at)}
                if admin.attachment_name:
                    entry["attachment_name"] = admin.attachment_name
                if admin.attachment_url:
                    entry["attachment_url"] = admin.attachment_url
                result["admin_audit_result"] = entry
            return result

    def op_logs(self, job_id: str, offset: int, limit: int) -> Json:
        with self._lock:
            logs = self._view(self._get(job_id), self._now()).logs()
            page = logs[offset : offset + limit]
            return {"count": len(logs), "operations": [self._log_json(log) for log in page]}

    def _log_json(self, log: _Log) -> Json:
        info: Json = {"review_id_list": [log.review_id] if log.review_id else []}
        if log.algorithm_failure_reason:
            info["algorithm_failure_reason"] = log.algorithm_failure_reason
        if log.admin_audit_failure_reason:
            info["admin_audit_failure_reason"] = log.admin_audit_failure_reason
        return {
            "time": self._ms(log.at),
            "action": log.action,
            "operator": log.operator,
            "external_info": info,
        }

    def stats(self) -> Json:
        with self._lock:
            now = self._now()
            states = Counter(self._view(job, now).state.value for job in self._jobs.values())
            return {"jobs": len(self._jobs), "commits": self.total_commits, "states": dict(states)}


def _detail(
    job_id: str,
    created_ago: float,
    out_of_range: Iterable[str],
    authorization: bool,
    allocated: bool,
) -> Json:
    base = f"https://metastudio-voice.obs.example.invalid/{job_id}"
    detail: Json = {
        "training_input_source_url": f"{base}/input.zip",
        "assess_result": assess_result(out_of_range),
    }
    if authorization:
        detail["voice_authorization_url"] = f"{base}/authorization.pdf"
    if allocated:
        detail["allocated_resource"] = {
            "resource_id": f"voice-training-{job_id[:8]}",
            "charge_mode": "ONE_TIME",
            "expire_time": "2027-06-30T23:59:59Z",
        }
    return detail


def _prefilter(job: _Job, query: ListQuery) -> bool:
    fields = job.fields
    return (
        (query.job_id is None or job.job_id == query.job_id)
        and (query.voice_name is None or query.voice_name in (fields.get("voice_name") or ""))
        and (query.tag is None or fields.get("tag") == query.tag)
        and (query.job_type is None or fields.get("job_type") == query.job_type)
        and (query.batch_name is None or fields.get("batch_name") == query.batch_name)
    )
