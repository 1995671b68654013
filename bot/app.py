"""The web process's Bolt app: the Slack listeners on top of the services (``bot.services``).

Nothing here reads the environment: settings and services come in, the app goes out.
"""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.admin import AdminService
from bot.inbox import InboxService
from bot.services import Services
from bot.settings import Settings
from bot.slack.deliveries import Deliveries
from bot.slack.languages import UserLanguages, language_middleware
from bot.slack.listeners import register_listeners


def build_app(settings: Settings, services: Services) -> AsyncApp:
    app = AsyncApp(
        client=services.slack,
        signing_secret=settings.secret("slack_signing_secret"),
        process_before_response=False,
    )
    languages = UserLanguages(
        services.slack,
        services.redis,
        settings.redis_prefix,
        ttl_seconds=settings.user_locale_cache_seconds,
    )
    app.use(language_middleware(languages))
    register_listeners(
        app,
        client=services.slack,
        submissions=services.submissions,
        admin=AdminService(services.permissions, services.audit, services.policies),
        metastudio=services.metastudio,
        notifier=services.notifier,
        metrics=services.metrics,
        deliveries=Deliveries(services.redis, settings.redis_prefix),
        require_approval=settings.require_approval,
        inbox=InboxService(
            services.redis,
            permissions=services.permissions,
            approvals=services.approvals,
            policies=services.policies,
        ),
        approvals=services.approvals,
        languages=languages,
    )
    return app
