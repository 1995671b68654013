"""The one place that turns a failure into what a Slack user reads.

Known failures become specific sentences from ``messages``; anything else is logged with a
short reference the user can quote, and the user is told nothing was done.
"""

from __future__ import annotations

import logging
import secrets

from bot.approvals import (
    RequestInProgress,
    RequestRateLimited,
    TooManyOpenRequests,
)
from bot.durability import NotReplicated
from bot.i18n import N_, _
from bot.metastudio import (
    APIError,
    CredentialsHeld,
    CredentialsRejected,
    JobNotFound,
    MetaStudioError,
)
from bot.metastudio.models import state_words
from bot.permissions import (
    BootstrapAdminError,
    GroupLookupFailed,
    GroupRoleRefused,
    LastAdminError,
    PermissionDenied,
    PermissionStoreUnavailable,
)
from bot.redis import StoreUnavailable
from bot.slack import messages
from bot.submissions import (
    CardNotPosted,
    JobNotReady,
    NoRoleHeld,
    RequestUnconfirmed,
    SubmitBlocked,
)

log = logging.getLogger("bot.slack")

ACTION_WORDS = {
    "submit": N_("submit voice-training tasks"),
    "approve": N_("approve or reject requests"),
    "manage": N_("manage roles"),
    "view": N_("use this command"),
}


def denial_text(error: PermissionDenied, channel_id: str | None) -> str:
    if error.channel_blocked:
        return messages.channel_not_allowed(channel_id or "?", list(error.allowed_channels))
    role = str(error.missing_role or "requester")
    action = str(error.action)
    words = _(ACTION_WORDS[action]) if action in ACTION_WORDS else action
    return messages.permission_denied(role, words, list(error.grantors))


def error_text(error: BaseException, *, channel_id: str | None = None, job_id: str = "") -> str:
    if isinstance(error, PermissionDenied):
        return denial_text(error, channel_id)
    if isinstance(error, NotReplicated):
        return messages.decision_not_confirmed()
    if isinstance(error, PermissionStoreUnavailable | StoreUnavailable):
        return messages.permission_store_unavailable()
    if isinstance(error, GroupLookupFailed):
        return messages.group_lookup_failed(error.group, error.error)
    if isinstance(error, GroupRoleRefused):
        return messages.group_role_refused(error.group, str(error.role))
    if isinstance(error, LastAdminError):
        return messages.last_admin(error.user)
    if isinstance(error, BootstrapAdminError):
        return _(
            "{user} is an admin through VOICEBOT_ADMINS; change that setting to remove them."
        ).format(user=messages.mention(error.user))
    if isinstance(error, RequestUnconfirmed):
        return messages.request_unconfirmed(error.channel)
    if isinstance(error, CardNotPosted):
        return messages.card_not_posted(error.channel, error.error, configured=error.configured)
    if isinstance(error, RequestInProgress):
        return messages.request_in_progress(error.job_id)
    if isinstance(error, TooManyOpenRequests):
        return messages.too_many_open_requests(error.open_count, error.retry_after)
    if isinstance(error, RequestRateLimited):
        return messages.request_rate_limited(error.limit, error.window, error.retry_after)
    if isinstance(error, JobNotFound):
        return messages.job_not_found(job_id or "?")
    if isinstance(error, JobNotReady):
        return messages.job_not_submittable(error.job.job_id, state_words(error.job.state))
    if isinstance(error, SubmitBlocked):
        checks = error.readiness.failed_checks if error.assessment else ()
        failed = [check.label for check in checks]
        return messages.submit_blocked(
            error.job.job_id, authorization=error.authorization, failed_checks=failed
        )
    if isinstance(error, NoRoleHeld):
        return messages.no_role_held(error.admins)
    if isinstance(error, CredentialsRejected | CredentialsHeld):
        return messages.credentials_call_refused(error.kind, error.hint)
    if isinstance(error, APIError):
        return messages.metastudio_error(error.error_code, error.error_msg, error.hint)
    if isinstance(error, MetaStudioError):
        return messages.metastudio_unavailable()
    reference = secrets.token_hex(4)
    log.error("unexpected error (reference %s)", reference, exc_info=error)
    return messages.internal_error(reference)
