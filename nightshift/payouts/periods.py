"""Pay periods: ISO weeks and months, midnight to midnight in the payroll's time zone."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from nightshift.platform.errors import NightshiftError


@dataclass(frozen=True)
class Period:
    """A pay period: an ISO week (2026-W47) or a month (2026-11), from midnight to midnight in
    the payroll's time zone; start and end are held in UTC, end exclusive."""

    label: str
    timezone: str
    start: dt.datetime
    end: dt.datetime

    @classmethod
    def parse(cls, label: str, timezone: str = "UTC") -> Period:
        zone = _zone(timezone)
        if week := re.fullmatch(r"(\d{4})-W(\d{2})", label):
            try:
                first = dt.date.fromisocalendar(int(week[1]), int(week[2]), 1)
            except ValueError:
                raise NightshiftError(f"period {label!r}: no such ISO week") from None
            after = first + dt.timedelta(days=7)
        elif month := re.fullmatch(r"(\d{4})-(\d{2})", label):
            year, number = int(month[1]), int(month[2])
            if not 1 <= number <= 12:
                raise NightshiftError(f"period {label!r}: no such month")
            first = dt.date(year, number, 1)
            after = dt.date(year + number // 12, number % 12 + 1, 1)
        else:
            raise NightshiftError(f"period {label!r}: expected an ISO week like 2026-W47 or a month like 2026-11")
        return cls(label, timezone, _midnight(first, zone), _midnight(after, zone))

    @classmethod
    def week_of(cls, moment: dt.datetime, timezone: str = "UTC") -> Period:
        year, week, _ = moment.astimezone(_zone(timezone)).date().isocalendar()
        return cls.parse(f"{year}-W{week:02d}", timezone)

    @classmethod
    def last_complete_week(cls, now: dt.datetime, timezone: str = "UTC") -> Period:
        return cls.week_of(now - dt.timedelta(days=7), timezone)

    def closed(self, now: dt.datetime) -> bool:
        return now >= self.end


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise NightshiftError(f"unknown time zone {name!r}") from None


def _midnight(day: dt.date, zone: ZoneInfo) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), zone).astimezone(dt.UTC)
