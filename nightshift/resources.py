"""The composition root: settings and every external resource, built in one place."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from nightshift.delivery.build import DeliveryOptions
from nightshift.notify.messages import LogNotifier, Notifier, SlackNotifier
from nightshift.platform import pseudonyms
from nightshift.platform.addresses import Resolver, system_resolver
from nightshift.platform.db import make_engine, make_sessionmaker
from nightshift.platform.outside import EnvSecretResolver, HttpxPoster, SecretResolver, WebhookPoster
from nightshift.platform.settings import Settings


@dataclass
class Resources:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    notifier: Notifier
    poster: WebhookPoster
    secrets: SecretResolver
    # How names of outside hosts become addresses (batch URLs, webhooks): DNS, or a stand-in.
    resolver: Resolver = system_resolver

    @classmethod
    def build(cls, settings: Settings, secrets: SecretResolver | None = None) -> Resources:
        engine = make_engine(settings.resolved_database_url)
        pseudonyms.use_key(pseudonyms.load_key(settings))
        secrets = secrets or EnvSecretResolver()
        token = settings.slack_token.get_secret_value() if settings.slack_token else None
        if token is None and settings.slack_token_secret:
            token = secrets.resolve(f"prefect:{settings.slack_token_secret}")[0]
        notifier: Notifier = SlackNotifier(token, settings.slack_base_url) if token else LogNotifier()
        return cls(
            settings=settings,
            engine=engine,
            sessions=make_sessionmaker(engine),
            notifier=notifier,
            poster=HttpxPoster(settings.webhook_timeout_seconds),
            secrets=secrets,
        )

    @property
    def delivery_options(self) -> DeliveryOptions:
        return DeliveryOptions(
            directory=self.settings.resolved_delivery_dir,
            page_bytes=self.settings.webhook_page_bytes,
            page_records=self.settings.webhook_page_records,
            link_base=self.settings.delivery_link_base,
        )

    def close(self) -> None:
        self.engine.dispose()
