"""The composition root: settings and every external resource, built in one place.

The only module that constructs Settings and Resources. Faces and layers ask it:

- load_settings(**overrides): settings from the environment (and overrides, for tests);
- prepare_process(console_log_level): settings that point Prefect and GX at our state folder;
  call before Prefect is imported;
- build(settings, secrets): a fresh Resources the caller owns and closes (tests, benches);
- current(): the process's one Resources, built on first use and cached;
- reset(): close and drop the cached Resources (tests, the demo: a new environment);
- use_secret_resolver(factory): how the cached Resources resolves secret references; the task
  layer supplies Prefect's (tasks/runtime.py), the default reads the environment.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from nightshift.delivery.build import DeliveryOptions
from nightshift.generate.shared import SharedModels
from nightshift.notify.messages import LogNotifier, Notifier, SlackNotifier
from nightshift.platform import pseudonyms
from nightshift.platform.addresses import Resolver, system_resolver
from nightshift.platform.db import make_engine, make_sessionmaker
from nightshift.platform.heap import settle_heap
from nightshift.platform.outside import EnvSecretResolver, HttpxPoster, SecretResolver, WebhookPoster
from nightshift.platform.settings import Settings, load_settings


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
    # Model clients for experts' runs from the workbench, kept open between runs.
    models: SharedModels = field(default_factory=SharedModels)

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
        self.models.close()
        self.engine.dispose()


def prepare_process(console_log_level: str | None = None) -> Settings:
    """Settings, after pointing Prefect and GX at our state folder: before Prefect is imported."""
    settings = load_settings()
    settings.prepare_process_environment(console_log_level=console_log_level)
    return settings


def build(settings: Settings | None = None, secrets: SecretResolver | None = None) -> Resources:
    """A Resources of the caller's own (it closes it): from these settings, else the environment's."""
    return Resources.build(settings if settings is not None else load_settings(), secrets)


_lock = threading.Lock()
_current: Resources | None = None
_secret_resolver: Callable[[], SecretResolver] = EnvSecretResolver


def use_secret_resolver(factory: Callable[[], SecretResolver]) -> None:
    """How current() resolves secret references from now on; a cached Resources built with
    another resolver is dropped, so the next current() uses this one."""
    global _secret_resolver
    with _lock:
        if factory is _secret_resolver:
            return
        _secret_resolver = factory
    reset()


def current() -> Resources:
    """The process's one Resources: built from the environment on first use, then shared."""
    global _current
    with _lock:
        if _current is None:
            # What is alive now (libraries imported, built once) is out of the collector's sight.
            settle_heap()
            _current = Resources.build(load_settings(), _secret_resolver())
        return _current


def reset() -> None:
    """Close and drop the cached Resources: the next current() builds them from the environment."""
    global _current
    with _lock:
        found, _current = _current, None
    if found is not None:
        found.close()
