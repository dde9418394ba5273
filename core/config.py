"""Clinic configuration: the chain file, its sites, and what each site enables.

``config/chain.yaml`` holds chain-wide defaults and sites (inline or one file per
site under ``config/sites/``). Every file is validated by the pydantic models
below; an error names the file, the line and the key, and suggests the close
match for a typo. :func:`resolve` then checks the sites against the installed
plugins (an unknown specialty lists the installed ones) and produces
:class:`Site` objects with everything scheduling needs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from core.protocol import Duration, LocalizedText, Milestone, Window
from core.yamlfile import ConfigError, LocatedYaml, load_located, located_errors

_RANGE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*[-–]\s*(\d{1,2}):(\d{2})\s*$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)


class TimeRange(_Model):
    """A local time range written ``"09:00-11:30"``; may wrap midnight (quiet hours ``"21:00-08:00"``)."""

    start: time
    end: time

    @model_validator(mode="before")
    @classmethod
    def _parse(cls, value: Any) -> Any:
        if isinstance(value, str):
            match = _RANGE.match(value)
            if not match:
                raise ValueError(f"invalid time range {value!r}: write it like '09:00-11:30'")
            h1, m1, h2, m2 = (int(g) for g in match.groups())
            try:
                return {"start": time(h1, m1), "end": time(h2, m2)}
            except ValueError as exc:
                raise ValueError(f"invalid time range {value!r}: {exc}") from None
        return value

    def contains(self, moment: time) -> bool:
        if self.start <= self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


class AttemptPolicy(_Model):
    max_failed_attempts: int = Field(default=3, ge=1, le=20)
    # defaults built without validating: a validated one would build Duration's validator in every command
    min_gap: Duration = Duration.model_construct(amount=2, unit="h")
    claim_hold: Duration = Duration.model_construct(amount=30, unit="min")


class AgeBands(_Model):
    """Who is a child (小朋友), who is reached through a parent or guardian, who is elderly (奶奶/爷爷)."""

    child_under: int = Field(default=14, ge=1, le=30)
    minor_under: int = Field(default=18, ge=1, le=30, description="called through a parent or guardian")
    elderly_from: int = Field(default=60, ge=30, le=120)

    @model_validator(mode="after")
    def _ordered(self) -> AgeBands:
        if self.child_under > self.minor_under:
            raise ValueError(f"child_under ({self.child_under}) is above minor_under ({self.minor_under})")
        return self


def _valid_timezone(value: str | None) -> str | None:
    if value is None:
        return value
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown timezone {value!r} (use an IANA name such as Asia/Shanghai)") from None
    return value


def _daytime_windows(value: list[TimeRange] | None) -> list[TimeRange] | None:
    """Calling windows are daytime ranges; one wrapping midnight would never be offered to a call."""
    for window in value or []:
        if not window.start < window.end:
            raise ValueError(
                f"calling window {window} must start before it ends on the same day "
                "(only quiet_hours may wrap midnight)"
            )
    return value


def _overlaps(window: TimeRange, quiet: TimeRange) -> bool:
    """Does a daytime calling window share any minute with the (possibly wrapping) quiet hours?"""
    return quiet.contains(window.start) or window.start < quiet.start < window.end


class EscalationHours(_Model):
    """How many working hours the assignee has to act on an escalation, by severity (issue 14 item 13)."""

    clinical: float = Field(default=4, gt=0, le=240)
    routine: float = Field(default=16, gt=0, le=480)


def _default_complaint_handler() -> LocalizedText:
    return LocalizedText(zh_CN="执行院长助理", en="executive assistant to the hospital director")


class Defaults(_Model):
    locale: Literal["zh_CN", "en"] = "zh_CN"
    timezone: str = "Asia/Shanghai"
    calling_windows: list[TimeRange] = Field(
        default_factory=lambda: [TimeRange.model_validate("09:00-11:30"), TimeRange.model_validate("14:30-17:30")],
        min_length=1,
    )
    quiet_hours: TimeRange = Field(default_factory=lambda: TimeRange.model_validate("21:00-08:00"))
    rest_hours: TimeRange | None = Field(
        default_factory=lambda: TimeRange.model_validate("12:00-14:00"),
        description="the patients' lunch break: every call avoids it when its window allows (null: none)",
    )
    holiday_country: str = "CN"
    attempt_policy: AttemptPolicy = Field(default_factory=AttemptPolicy)
    age_bands: AgeBands = Field(default_factory=AgeBands)
    # The doctors' working hours on a working day: escalation deadlines count only these.
    working_hours: TimeRange = Field(default_factory=lambda: TimeRange.model_validate("08:00-18:00"))
    escalation_hours: EscalationHours = Field(default_factory=EscalationHours)
    complaint_handler: LocalizedText = Field(
        default_factory=_default_complaint_handler, description="the role that answers complaints first (seed 002)",
    )

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str | None) -> str | None:
        return _valid_timezone(value)

    @field_validator("calling_windows")
    @classmethod
    def _windows(cls, value: list[TimeRange]) -> list[TimeRange] | None:
        return _daytime_windows(value)


class Override(_Model):
    """Change one milestone for a site: ``milestone: aesthetic.rhinoplasty.splint_removal``."""

    milestone: str = Field(pattern=r"^[a-z0-9_]+\.[a-z0-9_]+\.[a-z0-9_]+$")
    offset: Duration | None = None
    window: Window | None = None
    channel: Literal["phone", "sms", "wechat", "email"] | None = None
    fallback: Literal["phone"] | None = None
    notice: Literal["sms", "wechat", "email"] | None = None
    after_unsuccessful: Literal["sms", "wechat", "email"] | None = None
    disabled: bool = False
    note: str | None = None


class YearNoticeModel(_Model):
    holidays: list[date] = Field(default_factory=list)
    workdays: list[date] = Field(default_factory=list)


class StaffMember(_Model):
    username: str
    name: str
    role: Literal["coordinator", "doctor", "manager", "admin"] = "coordinator"  # what each may do: core/access.py
    sites: list[str] = Field(default_factory=list)
    locale: Literal["zh_CN", "en"] | None = Field(
        default=None, description="the language of this person's prompts and messages (default: the chain's)"
    )


class MessagingModel(_Model):
    """How ``followup send`` treats messages (chain-wide)."""

    max_per_patient_per_day: int = Field(default=2, ge=1, le=20)
    max_tries: int = Field(default=5, ge=1, le=20)
    retry_after: Duration = Field(default_factory=lambda: Duration(amount=5, unit="min"),
                                  description="the first retry's delay; each next one waits twice as long")
    sending_hold: Duration = Field(default_factory=lambda: Duration(amount=10, unit="min"),
                                   description="a message claimed by a sender that died is taken again after this")
    notice_at: str = Field(default="10:00", pattern=r"^\d{2}:\d{2}$",
                           description="local time the day before a call when its notice goes out")
    questionnaire_url: str = Field(default="http://127.0.0.1:8000",
                                   description="where patients' phones reach `followup serve`")
    secret: str | None = Field(default=None,
                               description="the questionnaire links' signing key, e.g. ${QUESTIONNAIRE_SECRET}")


class SiteModel(_Model):
    code: str = Field(pattern=r"^[A-Za-z0-9_-]+$")
    name: LocalizedText
    phone: str | None = Field(default=None, description="the clinic's number, read to patients in scripts")
    timezone: str | None = None
    locale: Literal["zh_CN", "en"] | None = None
    specialties: list[str] = Field(min_length=1)
    calling_windows: list[TimeRange] | None = None
    holiday_country: str | None = None
    closed_days: list[date] = Field(default_factory=list)
    extra_workdays: list[date] = Field(default_factory=list)
    overrides: list[Override] = Field(default_factory=list)
    events: dict[str, Duration] = Field(
        default_factory=dict,
        description="when this site's clinical events happen: aesthetic.rhinoplasty.splint_removal: 5d",
    )
    calls_every_day: bool = Field(default=False, description="this site calls on weekends and holidays too")
    template_dirs: list[str] = Field(default_factory=list)
    import_columns: dict[str, str] = Field(default_factory=dict)
    max_failed_attempts: int | None = Field(default=None, ge=1, le=20)
    on_call_doctor: str | None = Field(
        default=None, description="username of the doctor who takes escalations without an attending doctor on staff",
    )
    complaint_handler: LocalizedText | None = Field(default=None, description="who answers complaints first")
    channels: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="this site's changes to the chain's channels (e.g. its own templates)")

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str | None) -> str | None:
        return _valid_timezone(value)

    @field_validator("calling_windows")
    @classmethod
    def _windows(cls, value: list[TimeRange] | None) -> list[TimeRange] | None:
        return _daytime_windows(value)


class Sweep(_Model):
    """The month-end sweep (seed 002): unreachable follow-ups of the month are called once more."""

    enabled: bool = True
    days: list[int] = Field(default_factory=lambda: [25, 26, 27], min_length=1,
                            description="days of the month; the calls go to the first working ones")

    @field_validator("days")
    @classmethod
    def _days(cls, value: list[int]) -> list[int]:
        if any(not 1 <= d <= 28 for d in value):
            raise ValueError("sweep days are days of the month from 1 to 28 (every month has them)")
        return sorted(set(value))


class Greetings(_Model):
    """Birthday and wedding-anniversary greetings (seeds 002, 003)."""

    enabled: bool = True
    days_before: int = Field(default=3, ge=0, le=30, description="the greeting is due this many days before")
    channel: Literal["auto", "sms", "phone"] = Field(
        default="auto", description="auto: sms where the chain has an sms channel, else phone")


class ChainModel(_Model):
    name: LocalizedText
    database_url: str | None = None
    defaults: Defaults = Field(default_factory=Defaults)
    # Reminders on every call card (seed 001); none given: our four (core/messages.py manners.*); [] hides them.
    call_manners: list[LocalizedText] | None = None
    sweep: Sweep = Field(default_factory=Sweep)
    greetings: Greetings = Field(default_factory=Greetings)
    # the order of value tiers, highest first: the worklist calls these patients first after clinical calls
    value_tiers: list[str] = Field(default_factory=lambda: ["vip"])
    holiday_notices: dict[int, YearNoticeModel] = Field(default_factory=dict)
    staff: list[StaffMember] = Field(default_factory=list)
    # --as / FOLLOWUP_USER may name another staff member than the OS user (demos, tests); else only an admin may
    allow_as: bool = False
    # --now / FOLLOWUP_NOW may set the clock of commands that write (demos, tests, replaying a day)
    allow_now: bool = False
    channels: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="message channels: settings per channel name (docs/channels.md)")
    messaging: MessagingModel = Field(default_factory=MessagingModel)
    sites: list[SiteModel] = Field(default_factory=list)
    sites_dir: str | None = "sites"


@dataclass(frozen=True)
class EveryDay:
    """The calendar of a site that calls every day (seed 003): only its own closed days are off."""

    closed: frozenset[date] = frozenset()

    def is_working_day(self, day: date) -> bool:
        return day not in self.closed

    def is_published(self, day: date) -> bool:
        return True


@dataclass
class Site:
    """A site with the chain defaults applied: what scheduling and the worklist use."""

    code: str
    name: LocalizedText
    phone: str | None
    timezone: ZoneInfo
    locale: str
    specialties: list[str]
    calling_windows: list[TimeRange]
    quiet_hours: TimeRange
    holiday_country: str
    closed_days: list[date]
    extra_workdays: list[date]
    overrides: dict[str, Override]
    template_dirs: list[Path]
    import_columns: dict[str, str]
    attempt_policy: AttemptPolicy
    max_failed_attempts: int
    source: Path
    channels: dict[str, dict[str, Any]] = field(default_factory=dict)
    rest_hours: TimeRange | None = None
    events: dict[str, Duration] = field(default_factory=dict)
    calls_every_day: bool = False
    # Where the site was written (file and key path), for errors found after loading.
    located: tuple[LocatedYaml, tuple[Any, ...]] | None = field(default=None, repr=False)
    on_call_doctor: str | None = None
    complaint_handler: LocalizedText = field(default_factory=_default_complaint_handler)
    working_hours: TimeRange = field(default_factory=lambda: TimeRange.model_validate("08:00-18:00"))
    escalation_hours: EscalationHours = field(default_factory=EscalationHours)
    _calendar: Any = field(default=None, repr=False)

    def local(self, moment: datetime) -> datetime:
        return moment.astimezone(self.timezone)

    def calendar(self, chain: ChainConfig) -> Any:
        """This site's working-day calendar (country calendar + notices + closures)."""
        if self._calendar is None:
            from core.calendar import SiteCalendar, YearNotice
            from core.plugins import get_plugins

            notices = {
                year: YearNotice(frozenset(n.holidays), frozenset(n.workdays))
                for year, n in chain.model.holiday_notices.items()
            }
            self._calendar = SiteCalendar.build(
                get_plugins().calendar(self.holiday_country), notices, self.closed_days, self.extra_workdays
            )
            if self.calls_every_day:
                self._calendar = EveryDay(frozenset(self.closed_days))
        return self._calendar

    def apply_overrides(self, specialty: str, procedure: str, milestones: list[Milestone],
                        events: dict[str, Any] | None = None) -> list[Milestone]:
        """Site overrides on a procedure's milestones: change offset or window, or drop one.

        ``events`` are the procedure's clinical events (``Procedure.events``); a milestone that
        prepares one (``before``) gets the event's time at this site as ``event_at``.
        """
        out = []
        for ms in milestones:
            if ms.before is not None:
                at = self.events.get(f"{specialty}.{procedure}.{ms.before}") or (events or {}).get(ms.before)
                ms = ms.model_copy(update={"event_at": at})
            override = self.overrides.get(f"{specialty}.{procedure}.{ms.key}")
            if override is None:
                out.append(ms)
                continue
            if override.disabled:
                continue
            data = ms.model_dump()  # validated again: the offset must still lie in the window
            if override.offset is not None:
                data["offset"] = override.offset.model_dump()
            if override.window is not None:
                data["window"] = override.window.model_dump()
            if override.channel is not None and override.channel != data.get("channel"):
                # another channel: the options of the old one no longer apply
                data.update(fallback=None, notice=None, after_unsuccessful=None)
            for key in ("channel", "fallback", "notice", "after_unsuccessful"):
                if getattr(override, key) is not None:
                    data[key] = getattr(override, key)
            out.append(Milestone.model_validate(data))
        return out


@dataclass
class ChainConfig:
    path: Path
    model: ChainModel
    sites: dict[str, Site]
    warnings: list[str] = field(default_factory=list)

    @property
    def database_url(self) -> str | None:
        return self.model.database_url

    def site(self, code: str) -> Site:
        try:
            return self.sites[code]
        except KeyError:
            from core.messages import Msg

            near = _close_matches(code, list(self.sites), n=1)
            text = Msg("import_unknown_site", site=code, hint=Msg("did_you_mean", suggestion=near[0]) if near else "",
                       sites=", ".join(self.sites))
            error = ConfigError([str(text)])
            error.msg = text  # a coordinator reads it in their language
            raise error from None

    def timezone_of(self, code: str) -> ZoneInfo:
        """The site's timezone; the chain's default for a site no longer configured (old rows)."""
        site = self.sites.get(code)
        return site.timezone if site else ZoneInfo(self.model.defaults.timezone)

    def staff(self, username: str) -> StaffMember | None:
        return next((s for s in self.model.staff if s.username == username), None)

    def call_manners(self, locale: str) -> list[str]:
        """The telephone-manners reminders of the call card, in ``locale``."""
        if self.model.call_manners is not None:
            return [text.get(locale) for text in self.model.call_manners]
        from core.messages import message

        return [message(f"manners.{key}", locale) for key in ("ring", "redial", "hold", "speaker")]

    def tier_rank(self, tier: str | None) -> int:
        """0 for the highest value tier, 1 for the next...; tiers not listed (and none) come after all."""
        tiers = [t.casefold() for t in self.model.value_tiers]
        return tiers.index(tier.casefold()) if tier and tier.casefold() in tiers else len(tiers)


def _validate(model: type[BaseModel], source: LocatedYaml) -> Any:
    try:
        return model.model_validate(source.data)
    except ValidationError as err:
        raise ConfigError(located_errors(err, source, model)) from None


def load_config(path: Path | str, *, check_plugins: bool = True) -> ChainConfig:
    """Load and validate the chain file and its site files; raise :class:`ConfigError` on any problem.

    With ``check_plugins`` the result is also kept in the per-user cache (core/cache.py), keyed by the
    chain file, its site files, core and the plugins: the next command that finds them unchanged reads
    the validated configuration back instead of parsing and validating the YAML again.
    """
    path = Path(path)
    if check_plugins:
        cached = _cached_config(path)
        if cached is not None:
            return cached
    config = _load_config(path)
    if check_plugins:
        _checked_against_plugins(config)
        _store_config(path, config)
    return config


def _site_files(path: Path, sites_dir: str | None) -> list[Path]:
    if not sites_dir:
        return []
    folder = path.parent / sites_dir
    return sorted(folder.glob("*.yaml")) + sorted(folder.glob("*.yml"))


def _cached_config(path: Path) -> ChainConfig | None:
    from core import cache
    from core.plugins import get_plugins

    if get_plugins.cache_info().currsize or cache.folder() is None:  # plugins loaded: checked against them
        return None
    key = _config_key(path)
    entry = cache.get_object("config", key) if key is not None else None
    if not (isinstance(entry, tuple) and len(entry) == 2 and isinstance(entry[1], ChainConfig)):
        return None
    files, config = entry
    if cache.stamp(_site_files(path, config.model.sites_dir)) != files:  # a site file edited, added, removed
        return None
    return config


def _store_config(path: Path, config: ChainConfig) -> None:
    from core import cache

    if cache.folder() is None:
        return
    key = _config_key(path)
    if key is None:
        return
    import pickle

    for site in config.sites.values():  # the plugins' calendars too: retries and placement need no plugins
        try:
            pickle.dumps(site.calendar(config))
        except Exception:  # a calendar that cannot be kept (or fails): built again when needed
            site._calendar = None
    cache.put_object("config", key, (cache.stamp(_site_files(path, config.model.sites_dir)), config))


def _config_key(path: Path) -> list[Any] | None:
    from core import cache

    key = plugins_key()
    return None if key is None else [key, str(path), cache.stamp([path])]


def _load_config(path: Path) -> ChainConfig:
    chain_src = load_located(path)
    if not chain_src.lines:
        raise ConfigError([f"{path}:1: the chain file is empty: it needs at least a name and sites "
                           "(inline under 'sites:' or as files in sites/)"])
    if not isinstance(chain_src.data, dict):
        raise ConfigError([f"{path}:1: the chain file must be a mapping of keys (name, defaults, sites...)"])
    chain = _validate(ChainModel, chain_src)
    site_sources: list[tuple[SiteModel, LocatedYaml, tuple[Any, ...]]] = [
        (site, chain_src, ("sites", i)) for i, site in enumerate(chain.sites)
    ]
    problems: list[str] = []
    if chain.sites_dir:
        folder = path.parent / chain.sites_dir
        for site_file in sorted(folder.glob("*.yaml")) + sorted(folder.glob("*.yml")):
            src = load_located(site_file)
            if not src.lines:
                problems.append(f"{site_file}:1: the site file is empty: it needs at least code, name and specialties")
                continue
            try:
                site_sources.append((_validate(SiteModel, src), src, ()))
            except ConfigError as exc:
                problems.extend(exc.problems)
    if problems:
        raise ConfigError(problems)
    seen: dict[str, str] = {}
    for site, src, loc in site_sources:
        where = f"{src.path}:{src.line_of(loc + ('code',))}"
        if site.code in seen:
            problems.append(f"{where}: code: site {site.code!r} is defined twice (also at {seen[site.code]})")
        seen[site.code] = where
        problems.extend(_duplicate_overrides(site, src, loc))
        if site.on_call_doctor is not None and site.on_call_doctor not in {m.username for m in chain.staff}:
            problems.append(
                f"{src.path}:{src.line_of(loc + ('on_call_doctor',))}: on_call_doctor: {site.on_call_doctor!r} "
                f"is not a staff member (staff: {', '.join(m.username for m in chain.staff) or 'none'})"
            )
        problems.extend(_windows_in_quiet_hours(chain, chain_src, site, src, loc))
    if not site_sources:
        problems.append(f"{path}:1: sites: no sites defined (inline under 'sites:' or as files in {chain.sites_dir}/)")
    problems.extend(_staff_problems(chain, chain_src, set(seen)))
    if problems:
        raise ConfigError(problems)
    config = ChainConfig(path=path, model=chain, sites={})
    for site, src, loc in site_sources:
        config.sites[site.code] = _resolve_site(chain, site, src, loc)
    return config


def _staff_problems(chain: ChainModel, src: LocatedYaml, sites: set[str]) -> list[str]:
    """A staff member at a site that does not exist, or a username given twice: the list is wrong."""
    problems, first = [], {}
    for i, member in enumerate(chain.staff):
        if member.username in first:
            problems.append(f"{src.path}:{src.line_of(('staff', i, 'username'))}: staff.{i}.username: "
                            f"{member.username!r} is listed twice (also at line {first[member.username]})")
        first.setdefault(member.username, src.line_of(("staff", i, "username")))
        for j, code in enumerate(member.sites):
            if code not in sites:
                near = _close_matches(code, sorted(sites), n=1)
                hint = f" — did you mean {near[0]!r}?" if near else ""
                problems.append(f"{src.path}:{src.line_of(('staff', i, 'sites', j))}: staff.{i}.sites: "
                                f"{member.username} works at unknown site {code!r}{hint} "
                                f"(sites: {', '.join(sorted(sites))})")
    return problems


def staff_warnings(config: ChainConfig) -> list[str]:
    """Sites nobody calls for, or whose escalations reach no doctor (a chain without staff: single-user)."""
    if not config.model.staff:
        return []
    warnings = []
    for code in config.sites:
        for role, why in (("coordinator", "nobody calls its patients"), ("doctor", "its escalations reach no doctor")):
            if not any(m.role == role and (not m.sites or code in m.sites) for m in config.model.staff):
                warnings.append(f"site {code} has no {role} in the staff list: {why}")
    return warnings


def _checked_against_plugins(config: ChainConfig) -> None:
    """:func:`check_against_plugins`, skipped when it passed before for the same files and plugins.

    Commands that do not otherwise need the plugins (worklist, tasks, claim) then never load them.
    The key: the chain and site files, every file of core and of each plugin package, the installed
    distributions (site-packages folders), the plugin environment variables and today's date (the
    holiday warnings look ahead from today). See core/cache.py.
    """
    from core import cache
    from core.plugins import get_plugins

    if get_plugins.cache_info().currsize or cache.folder() is None:  # plugins already loaded: just check
        check_against_plugins(config)
        return
    key = _check_key(config)
    stored = cache.get("config-check", key) if key is not None else None
    warnings = _decode(stored) if isinstance(stored, list) else None
    if warnings is not None:
        config.warnings.extend(warnings)
        return
    before = len(config.warnings)
    check_against_plugins(config)
    encoded = _encode(config.warnings[before:])
    if key is not None and encoded is not None:
        cache.put("config-check", key, encoded)


def _encode(value: Any) -> Any:
    """Warnings as JSON: text, catalogue messages (core.messages.Msg, Joined) and their plain values;
    ``None`` when something else is in them (then they are not cached)."""
    from core.messages import Joined, Msg

    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, date) and not isinstance(value, datetime):
        return {"date": value.isoformat()}
    if isinstance(value, list):
        items = [_encode(v) for v in value]
        return None if any(i is None and v is not None for i, v in zip(items, value, strict=True)) else items
    if isinstance(value, Msg):
        values = {k: _encode(v) for k, v in value.values.items()}
        if any(values[k] is None and value.values[k] is not None for k in values):
            return None
        return {"msg": value.key, "values": values}
    if isinstance(value, Joined):
        parts = _encode(value.parts)
        return None if parts is None else {"joined": parts}
    return None


def _decode(value: Any) -> Any:
    """:func:`_encode` undone; ``None`` for an entry this version cannot read (then the check runs)."""
    try:
        return _decoded(value)
    except (KeyError, TypeError, ValueError, AttributeError):  # e.g. a message no longer in the catalogue
        return None


def _decoded(value: Any) -> Any:
    from core.messages import Joined, Msg

    if isinstance(value, list):
        return [_decoded(v) for v in value]
    if isinstance(value, dict):
        if "date" in value:
            return date.fromisoformat(value["date"])
        if "joined" in value:
            return Joined(_decoded(value["joined"]))
        return Msg(value["msg"], **{k: _decoded(v) for k, v in value["values"].items()})
    return value


def _check_key(config: ChainConfig) -> list[Any] | None:
    from core import cache

    key = plugins_key()
    if key is None:
        return None
    files: list[Path] = [config.path, *(site.source for site in config.sites.values() if site.source)]
    return [*key, cache.stamp(files)]


def plugins_key() -> list[Any] | None:
    """What the plugins' catalogue depends on, for cache keys: today's date (holiday warnings look ahead from
    today), the plugin environment variables, the installed plugins and every file of core and of each plugin
    package, and the installed distributions (site-packages folders). ``None`` when a plugin cannot be found."""
    from core import cache

    if cache.MEMO is not None:
        if "plugins_key" not in cache.MEMO:
            cache.MEMO["plugins_key"] = _plugins_key()
        return cache.MEMO["plugins_key"]
    return _plugins_key()


def _plugins_key() -> list[Any] | None:
    import importlib.util
    import os
    import sys

    from core import cache
    from core.plugins import entry_points_found

    files: list[Path | str] = [*cache.tree(Path(__file__).parent)]
    installed = cache.stamp([p for p in sys.path if p and os.path.isdir(p)])
    plugins = entry_points_found(installed)  # kept in the cache, keyed by these folders
    _no_pydantic_plugins(installed)
    for _, _, module, _ in plugins:
        try:
            spec = importlib.util.find_spec(module)
        except (ImportError, ValueError):
            return None
        if spec is None:
            return None
        if spec.submodule_search_locations:
            for location in spec.submodule_search_locations:
                files += cache.tree(location)
        elif spec.origin:
            files.append(Path(spec.origin))
    env = [os.environ.get(v) for v in ("FOLLOWUP_LOAD_PLUGINS", "FOLLOWUP_STRICT_PLUGINS")]
    return [date.today().isoformat(), env, plugins, cache.stamp(files), installed]


def _no_pydantic_plugins(installed: Any) -> None:
    """Spare pydantic its search for plugins when none is installed.

    The first validator a process builds makes pydantic read the entry points of every installed
    distribution, looking for its own plugins (about 10 ms in every command). Whether any distribution of
    these site-packages folders declares one is kept in the cache, keyed like the entry points above; when
    none does, pydantic is told so (its list of loaded plugins, empty), and when one does, pydantic loads it
    as always."""
    from core import cache

    found = cache.get("pydantic-plugins", installed)
    if not isinstance(found, bool):
        from importlib import metadata

        found = bool(metadata.entry_points(group="pydantic"))
        cache.put("pydantic-plugins", installed, found)
    if not found:
        try:
            from pydantic.plugin import _loader
        except ImportError:  # a pydantic laid out otherwise searches as it always does
            return
        if getattr(_loader, "_plugins", False) is None:
            _loader._plugins = {}


def _windows_in_quiet_hours(
    chain: ChainModel, chain_src: LocatedYaml, site: SiteModel, src: LocatedYaml, loc: tuple[Any, ...]
) -> list[str]:
    """A routine call placed in a calling window must never ring during quiet hours."""
    quiet = chain.defaults.quiet_hours
    if site.calling_windows:
        windows, where, key = site.calling_windows, src, loc + ("calling_windows",)
    else:
        windows, where, key = chain.defaults.calling_windows, chain_src, ("defaults", "calling_windows")
    return [
        f"{where.path}:{where.line_of(key + (i,))}: {'.'.join(map(str, key + (i,)))}: calling window {w} "
        f"overlaps the quiet hours {quiet} (site {site.code})"
        for i, w in enumerate(windows)
        if _overlaps(w, quiet)
    ]


def _duplicate_overrides(site: SiteModel, src: LocatedYaml, loc: tuple[Any, ...]) -> list[str]:
    """Two overrides of one milestone would silently keep only the last: name both lines instead."""
    first: dict[str, int | None] = {}
    problems = []
    for i, override in enumerate(site.overrides):
        line = src.line_of(loc + ("overrides", i, "milestone"))
        if override.milestone in first:
            problems.append(
                f"{src.path}:{line}: overrides.{i}.milestone: {override.milestone} is overridden twice "
                f"(also at line {first[override.milestone]}); merge them into one override"
            )
        else:
            first[override.milestone] = line
    return problems


def _resolve_site(chain: ChainModel, site: SiteModel, src: LocatedYaml, loc: tuple[Any, ...]) -> Site:
    d = chain.defaults
    return Site(
        code=site.code,
        name=site.name,
        phone=site.phone,
        timezone=ZoneInfo(site.timezone or d.timezone),
        locale=site.locale or d.locale,
        specialties=list(site.specialties),
        calling_windows=site.calling_windows or d.calling_windows,
        quiet_hours=d.quiet_hours,
        rest_hours=d.rest_hours,
        events=dict(site.events),
        calls_every_day=site.calls_every_day,
        holiday_country=(site.holiday_country or d.holiday_country).upper(),
        closed_days=site.closed_days,
        extra_workdays=site.extra_workdays,
        overrides={o.milestone: o for o in site.overrides},
        template_dirs=[(src.path.parent / t).resolve() for t in site.template_dirs],
        import_columns=site.import_columns,
        attempt_policy=d.attempt_policy,
        max_failed_attempts=site.max_failed_attempts or d.attempt_policy.max_failed_attempts,
        source=src.path,
        located=(src, loc),
        on_call_doctor=site.on_call_doctor,
        complaint_handler=site.complaint_handler or d.complaint_handler,
        working_hours=d.working_hours,
        escalation_hours=d.escalation_hours,
        channels=_merged_channels(chain.channels, site.channels),
    )


def _merged_channels(chain: dict[str, dict[str, Any]], site: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The chain's channels with a site's changes: keys replaced, ``templates`` merged by kind."""
    merged = {name: dict(settings or {}) for name, settings in chain.items()}
    for name, changes in site.items():
        entry = merged.setdefault(name, {})
        for key, value in (changes or {}).items():
            if key == "templates" and isinstance(value, dict) and isinstance(entry.get(key), dict):
                entry[key] = {**entry[key], **value}
            else:
                entry[key] = value
    return merged


def check_against_plugins(config: ChainConfig, plugins: Any = None) -> None:
    """Every enabled specialty must be installed; every override must name a real milestone."""
    if plugins is None:
        from core.plugins import get_plugins

        plugins = get_plugins()
    installed = plugins.specialties()
    problems: list[str] = []
    for site in config.sites.values():
        src, loc = site.located or (load_located(site.source), ())
        problem = _calendar_problem(config, plugins, site, src, loc)
        if problem:
            problems.append(problem)
        for i, key in enumerate(site.specialties):
            if key not in installed:
                near = _close_matches(key, list(installed), n=1)
                hint = f" — did you mean {near[0]!r}?" if near else ""
                problems.append(
                    f"{src.path}:{src.line_of(loc + ('specialties', i))}: sites.{site.code}.specialties: "
                    f"specialty {key!r} is not installed{hint} (installed: {', '.join(installed) or 'none'})"
                )
        for name in site.events:  # aesthetic.rhinoplasty.splint_removal: 5d
            parts = name.split(".")
            where = f"{src.path}:{src.line_of(loc + ('events', name))}: sites.{site.code}.events"
            spec = plugins.specialty(parts[0]) if len(parts) == 3 else None
            proc = spec.procedure(parts[1]) if spec else None
            if proc is None or parts[2] not in proc.events:
                known = ", ".join(f"{parts[0]}.{parts[1]}.{e}" for e in (proc.events if proc else {})) or "none"
                problems.append(f"{where}: {name}: no such event (write specialty.procedure.event; here: {known})")
        site_model_overrides = list(site.overrides.values())
        for i, override in enumerate(site_model_overrides):
            spec_key, proc_code, ms_key = override.milestone.split(".")
            line = src.line_of(loc + ("overrides", i, "milestone"))
            where = f"{src.path}:{line}: sites.{site.code}.overrides"
            if spec_key not in site.specialties:
                problems.append(f"{where}: {override.milestone}: specialty {spec_key!r} is not enabled at this site")
                continue
            if spec_key not in installed:
                continue
            spec = installed[spec_key][1]
            if spec.procedure(proc_code) is None:
                near = _close_matches(proc_code, [p.code for p in spec.procedures], n=1)
                hint = f" — did you mean {near[0]!r}?" if near else ""
                problems.append(f"{where}: {override.milestone}: no procedure {proc_code!r} in {spec_key}{hint}")
                continue
            provided = {m.key: m for _, m in plugins.milestones(spec_key, proc_code)}
            if ms_key not in provided:
                near = _close_matches(ms_key, list(provided), n=1)
                hint = f" — did you mean {near[0]!r}?" if near else ""
                problems.append(
                    f"{where}: {override.milestone}: no milestone {ms_key!r}{hint} (has: {', '.join(provided)})"
                )
                continue
            original = provided[ms_key]
            try:
                site.apply_overrides(spec_key, proc_code, [original])
            except ValidationError as err:
                msgs = "; ".join(e["msg"].removeprefix("Value error, ") for e in err.errors())
                problems.append(f"{where}: {override.milestone}: {msgs}")
    problems.extend(_channel_problems(config, plugins))
    if problems:
        raise ConfigError(problems)
    config.warnings.extend(calendar_warnings(config, plugins))
    config.warnings.extend(staff_warnings(config))
    config.warnings.extend(channel_warnings(config))


def _channel_problems(config: ChainConfig, plugins: Any) -> list[str]:
    """Every configured channel must name an installed channel plugin and fit its settings."""
    from core.channels import ChannelError, channel_settings

    installed = plugins.channels()
    problems: list[str] = []
    if not installed:  # e.g. FOLLOWUP_LOAD_PLUGINS without the channel plugins: `send` says so when used
        return problems
    chain_src = load_located(config.path)
    seen: set[tuple[str, str]] = set()
    for site in config.sites.values():
        for name in site.channels:
            try:
                channel_settings(site, name, installed, environ=None, check_only=True)
            except ChannelError as exc:
                key = (name, str(exc))
                if key in seen:
                    continue
                seen.add(key)
                line = chain_src.line_of(("channels", name))
                problems.append(f"{config.path}:{line}: channels.{name}: {exc} (site {site.code})")
    return problems


def channel_warnings(config: ChainConfig) -> list[str]:
    """Credentials named in the channels (``${NAME}``) that the environment does not have."""
    from core.channels import missing_env

    out: dict[str, list[str]] = {}
    for site in config.sites.values():
        for name, settings in site.channels.items():
            for var in missing_env(settings):
                out.setdefault(var, [])
                if name not in out[var]:
                    out[var].append(name)
    secret = config.model.messaging.secret
    if secret:
        for var in missing_env({"secret": secret}):
            out.setdefault(var, []).append("messaging.secret")
    return [f"environment variable {var} is not set (needed by: {', '.join(users)})"
            for var, users in sorted(out.items())]


def _calendar_problem(
    config: ChainConfig, plugins: Any, site: Site, src: LocatedYaml, loc: tuple[Any, ...]
) -> str | None:
    """An unknown holiday country is a config error here, not a crash at the first schedule."""
    from core.plugins import PluginError

    try:
        plugins.calendar(site.holiday_country)
    except PluginError as exc:
        if (loc + ("holiday_country",)) in src.lines:
            where = f"{src.path}:{src.line_of(loc + ('holiday_country',))}: holiday_country"
        else:
            chain_src = load_located(config.path)
            where = f"{config.path}:{chain_src.line_of(('defaults', 'holiday_country'))}: defaults.holiday_country"
        return (
            f"{where}: no working-day calendar for {site.holiday_country!r} (site {site.code}); "
            f"use a country code the holidays package knows, e.g. CN, HK, GB ({exc})"
        )
    return None


def calendar_warnings(config: ChainConfig, plugins: Any) -> list[str]:
    """Warn when official holiday data ends before the longest follow-up we may schedule."""
    longest = timedelta(days=0)
    for site in config.sites.values():
        for key in site.specialties:
            spec = plugins.specialty(key)
            for proc in spec.procedures if spec else ():
                for _, ms in plugins.milestones(key, proc.code):
                    longest = max(longest, timedelta(minutes=ms.window.latest.approx_minutes))
    warnings = []
    horizon = date.today() + longest
    for country in sorted({s.holiday_country for s in config.sites.values()}):
        cal = plugins.calendar(country)
        until = getattr(cal, "published_until", lambda: date.max)()
        missing = [y for y in range(until.year + 1, horizon.year + 1) if y not in config.model.holiday_notices]
        if missing:
            from core.messages import Msg

            warnings.append(Msg("holiday_provisional", country=country, until=until, horizon=horizon,
                                years=", ".join(map(str, missing))))
    return warnings


def _close_matches(word: str, choices: list[str], n: int = 1) -> list[str]:
    """difflib's suggestions ("did you mean ...?"), imported only when a name is wrong."""
    import difflib

    return difflib.get_close_matches(word, choices, n=n)
