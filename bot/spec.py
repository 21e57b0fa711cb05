"""The YAML script format as pydantic models: what a business may write, and nothing else."""

from __future__ import annotations

import re
from datetime import date, time, timedelta
from itertools import pairwise
from typing import Annotated, Any, Literal, TypeAlias
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

IDENTIFIER = r"^[a-z][a-z0-9_]{0,47}$"
CONTENT_SID = r"^HX[0-9a-fA-F]{32}$"  # a Twilio Content API template
LANGUAGE = r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$"

Identifier = Annotated[str, Field(pattern=IDENTIFIER, description="lower_snake_case, <= 48 chars")]
Language = Annotated[str, Field(pattern=LANGUAGE, description="language code such as en or pt-BR")]
LocalizedText: TypeAlias = Annotated[
    str | dict[Language, str],
    Field(description="A text for every language, or a map of language code to text"),
]

STANDARD_LEAD_FIELDS: dict[str, str] = {
    "name": "text",
    "first_name": "text",
    "last_name": "text",
    "email": "email",
    "phone": "phone",
    "city": "text",
    "state": "text",
    "zip_code": "text",
    "country": "text",
    "company": "text",
    "job_title": "text",
    "gender": "text",
    "date_of_birth": "date",
}

_DURATION = re.compile(r"^\s*(\d+)\s*(s|m|h|d|w)\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _parse_duration(value: object) -> object:
    """Accept "90s", "10m", "2h", "1d", "1w" besides pydantic's own ISO 8601 and seconds."""
    if isinstance(value, str) and (match := _DURATION.match(value)):
        return timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2)])
    return value


Duration = Annotated[timedelta, BeforeValidator(_parse_duration)]


class Model(BaseModel):
    """Base of the format: unknown keys are errors, and a loaded script is immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class LeadFieldSpec(Model):
    """A lead field the form provides that is not one of the standard ones."""

    name: Identifier
    label: LocalizedText | None = None
    type: Literal["text", "email", "phone", "number", "url", "date"] = "text"
    required: bool = False


class Branch(Model):
    """One conditional next step: go to `goto` when `if` holds (no `if`: always)."""

    if_: str | None = Field(default=None, alias="if", description="Jinja2 expression")
    goto: Identifier = Field(description="a question id or an outcome id")


class OutcomeRef(Model):
    outcome: Identifier


FailAction: TypeAlias = Literal["skip", "handoff"] | OutcomeRef


class QuestionBase(Model):
    id: Identifier
    prompt: LocalizedText
    retry: LocalizedText | None = Field(default=None, description="said after an invalid reply")
    help: LocalizedText | None = None
    max_attempts: int = Field(default=3, ge=1, le=10)
    on_fail: FailAction = Field(default="skip", description="after max_attempts invalid replies")
    prefill: Identifier | None = Field(default=None, description="lead field that answers this")
    confirm_prefill: bool = Field(default=False, description="confirm a prefilled value (yes/no)")
    confirm: LocalizedText | None = Field(
        default=None, description="confirmation text for a prefilled {{ value }}"
    )
    next: Identifier | list[Branch] | None = None
    whatsapp_buttons: str | None = Field(
        default=None,
        pattern=CONTENT_SID,
        description="WhatsApp: content SID of a quick-reply template whose button ids are the "
        "option values; its body variable {{1}} gets the prompt",
    )

    @property
    def branches(self) -> tuple[Branch, ...]:
        if self.next is None:
            return ()
        if isinstance(self.next, str):
            return (Branch(goto=self.next),)
        return tuple(self.next)


class TextQuestion(QuestionBase):
    type: Literal["text"]
    min_length: int | None = Field(default=None, ge=0)
    max_length: int | None = Field(default=None, ge=1)
    pattern: str | None = None

    @field_validator("pattern")
    @classmethod
    def _pattern_compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as error:
                raise ValueError(f"pattern is not a valid regular expression: {error}") from None
        return value


class EmailQuestion(QuestionBase):
    type: Literal["email"]


class PhoneQuestion(QuestionBase):
    type: Literal["phone"]
    region: str | None = Field(default=None, pattern=r"^[A-Z]{2}$")


class NumberQuestion(QuestionBase):
    type: Literal["number"]
    integer: bool = False
    min: float | None = None
    max: float | None = None


class UrlQuestion(QuestionBase):
    type: Literal["url"]


class ChoiceOptionSpec(Model):
    value: Identifier
    label: LocalizedText
    synonyms: list[str] | dict[Language, list[str]] = Field(default_factory=list)
    score: int = 0


class ChoiceQuestion(QuestionBase):
    type: Literal["choice"]
    options: list[ChoiceOptionSpec] = Field(min_length=1)
    multiple: bool = False
    min_choices: int | None = Field(default=None, ge=1)
    max_choices: int | None = Field(default=None, ge=1)


class YesNoQuestion(QuestionBase):
    type: Literal["yes_no"]


class ConsentQuestion(QuestionBase):
    """An explicit opt-in: the rendered prompt is recorded as the consent text."""

    type: Literal["consent"]
    on_decline: Literal["skip"] | OutcomeRef = "skip"


def _parse_hours(value: object) -> object:
    if isinstance(value, str):
        match = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*", value)
        if not match:
            raise ValueError('hours must look like "09:00-18:00"')
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        try:
            start, end = time(h1, m1), time(h2, m2)
        except ValueError:
            raise ValueError(f"hours {value!r} is not a valid time range") from None
        if start >= end:
            raise ValueError("hours must end after they start")
        return (start, end)
    return value


class DateQuestion(QuestionBase):
    """A date ("date") or a date and time ("datetime"), in the prospect's time zone."""

    type: Literal["date", "datetime"]
    future_only: bool = False
    within_days: int | None = Field(default=None, ge=1)
    weekdays: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] | None = None
    hours: Annotated[tuple[time, time] | None, BeforeValidator(_parse_hours)] = Field(
        default=None, description='allowed time of day, "09:00-18:00"'
    )

    @property
    def weekday_numbers(self) -> frozenset[int] | None:
        if self.weekdays is None:
            return None
        return frozenset(_WEEKDAYS.index(day) for day in self.weekdays)


def _one_or_many(value: object) -> object:
    return [value] if isinstance(value, str) else value


# The schema says what people write ("09:00-13:00"), not the parsed (start, end) pairs.
OpeningHours = Annotated[
    list[
        Annotated[
            tuple[time, time],
            BeforeValidator(_parse_hours, json_schema_input_type=str),
        ]
    ],
    BeforeValidator(_one_or_many, json_schema_input_type=str | list[str]),
    Field(description='"09:00-13:00", or a list of such ranges'),
]
Weekday: TypeAlias = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


WeeklyHours: TypeAlias = dict[Weekday, list[tuple[time, time]]]


def _known_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r} (use an IANA name)") from None
    return value


def _no_overlaps(hours: WeeklyHours) -> WeeklyHours:
    for day, ranges in hours.items():
        ordered = sorted(ranges)
        for before, after in pairwise(ordered):
            if after[0] < before[1]:
                raise ValueError(f"the opening hours of {day} overlap")
    return hours


class LocationSpec(Model):
    """A place where appointments happen; with several, the prospect picks one first."""

    id: Identifier
    name: LocalizedText
    address: str | None = Field(default=None, description="shown in the confirmation and .ics")
    hours: dict[Weekday, OpeningHours] | None = Field(
        default=None, description="this place's own opening hours (default: the calendar's)"
    )
    capacity: int | None = Field(default=None, ge=1, le=100, description="default: the calendar's")

    @field_validator("hours")
    @classmethod
    def _no_overlap(cls, value: WeeklyHours | None) -> WeeklyHours | None:
        return None if value is None else _no_overlaps(value)


class CalendarSpec(Model):
    """Bookable slots: opening hours cut into slots of `slot` length, `capacity` seats each.

    Slots are wall-clock times in `timezone`; a calendar's id is its name in the database, so
    scripts that name the same calendar share its seats."""

    id: Identifier
    timezone: str | None = Field(default=None, description="IANA name; default: the script's")
    hours: dict[Weekday, OpeningHours] = Field(
        description='opening hours per weekday, e.g. {mon: "09:00-18:00"}; days left out are closed'
    )
    slot: Duration = Field(default=timedelta(minutes=30), description='slot length, e.g. "45m"')
    capacity: int = Field(default=1, ge=1, le=100, description="bookings per slot")
    notice: Duration = Field(
        default=timedelta(hours=2), description="the earliest slot offered is this far ahead"
    )
    horizon: Duration = Field(default=timedelta(days=14), description="how far ahead to offer")
    closed: list[date] = Field(default_factory=list, description="dates with no slots")
    locations: list[LocationSpec] = Field(min_length=1)

    @field_validator("hours")
    @classmethod
    def _no_overlap(cls, value: WeeklyHours) -> WeeklyHours:
        return _no_overlaps(value)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        return None if value is None else _known_timezone(value)

    @model_validator(mode="after")
    def _sensible(self) -> CalendarSpec:
        if not timedelta(minutes=5) <= self.slot <= timedelta(hours=12):
            raise ValueError("slot must be between 5 minutes and 12 hours")
        if self.notice < timedelta(0):
            raise ValueError("notice cannot be negative")
        if not timedelta(days=1) <= self.horizon <= timedelta(days=366):
            raise ValueError("horizon must be between 1 day and 366 days")
        if len({location.id for location in self.locations}) != len(self.locations):
            raise ValueError("location ids must be unique within a calendar")
        return self


class AppointmentQuestion(QuestionBase):
    """Offers the next free slots of a calendar as options, pages on with "other times", and
    understands a typed wish ("tomorrow after 5"); the answer is the booked slot."""

    type: Literal["appointment"]
    calendar: Identifier = Field(description="the id of one of the script's calendars")
    offer: int = Field(default=3, ge=1, le=8, description="slots offered at a time")
    location_prompt: LocalizedText | None = Field(
        default=None, description="asks for the place first when the calendar has several"
    )


class HandoffStep(QuestionBase):
    """Not a question: says `prompt`, then hands the conversation to a rep.

    When the rep hands it back, the flow continues with this step's `next`.
    """

    type: Literal["handoff"]
    reason: str = "handoff step"


Question = Annotated[
    TextQuestion
    | EmailQuestion
    | PhoneQuestion
    | NumberQuestion
    | UrlQuestion
    | ChoiceQuestion
    | YesNoQuestion
    | ConsentQuestion
    | DateQuestion
    | AppointmentQuestion
    | HandoffStep,
    Field(discriminator="type"),
]


class ScoreRule(Model):
    if_: str = Field(alias="if", description="Jinja2 expression over answers and lead")
    points: int
    reason: str | None = Field(default=None, description="defaults to the condition")


class Outcome(Model):
    """How a conversation ends; chosen by a `goto`, or in order by `when` / score bounds."""

    id: Identifier
    message: LocalizedText | None = None
    when: str | None = Field(default=None, description="Jinja2 expression")
    min_score: int | None = None
    max_score: int | None = None
    qualified: bool | None = None
    handoff: bool = Field(default=False, description="hand the finished lead to a rep")

    @property
    def is_default(self) -> bool:
        return self.when is None and self.min_score is None and self.max_score is None


class HandoffSettings(Model):
    phrases: dict[Language, list[str]] = Field(default_factory=dict)
    message: LocalizedText | None = None
    resume_message: LocalizedText | None = None
    when: str | None = Field(
        default=None,
        description='hand over when this holds after an answer, e.g. "qualified and score >= 80"',
    )
    timeout: Duration | None = Field(
        default=None,
        description="how long a prospect waits for a rep (default: the server's handoff_timeout)",
    )
    on_timeout: Literal["resume", "callback"] = Field(
        default="resume", description="no rep in time: the bot goes on, or asks when to call"
    )


class KeywordSettings(Model):
    """Extra reserved words; built-in ones (STOP, restart, help...) always apply."""

    restart: dict[Language, list[str]] = Field(default_factory=dict)
    help: dict[Language, list[str]] = Field(default_factory=dict)
    opt_out: dict[Language, list[str]] = Field(default_factory=dict)
    reschedule: dict[Language, list[str]] = Field(default_factory=dict)
    cancel_appointment: dict[Language, list[str]] = Field(default_factory=dict)


class ReminderSettings(Model):
    after: list[Duration] = Field(min_length=1, description='delays, e.g. ["10m", "1d"]')
    message: LocalizedText | None = None


class ExpirySettings(Model):
    after: Duration
    late_reply: Literal["resume", "restart"] = "resume"


class FirstContact(Model):
    """The bot writes first when a lead arrives with a phone number and consent: an SMS, or on
    WhatsApp an approved template. The prospect's reply opens the conversation."""

    channel: Literal["sms", "whatsapp"]
    text: LocalizedText | None = Field(
        default=None, description="the SMS, a template over `lead` (required for sms)"
    )
    template: str | None = Field(
        default=None, pattern=CONTENT_SID, description="WhatsApp: approved content SID"
    )
    variables: dict[str, str] = Field(
        default_factory=dict,
        description='the template\'s variables, e.g. {"1": "{{ lead.first_name }}"}',
    )

    @model_validator(mode="after")
    def _what_to_send(self) -> FirstContact:
        if self.channel == "sms" and self.text is None:
            raise ValueError("first contact by sms needs a text")
        if self.channel == "whatsapp" and self.template is None:
            raise ValueError(
                "first contact on whatsapp needs an approved template (content SID HX...): "
                "WhatsApp refuses free text to someone who has not written in 24 hours"
            )
        return self


class Script(Model):
    """A whole bot script."""

    id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
    name: str
    description: str | None = None
    languages: list[Language] = Field(default=["en"], min_length=1, description="first: default")
    timezone: str = "UTC"
    region: str | None = Field(default=None, pattern=r"^[A-Z]{2}$", description="phone region")
    lead_fields: list[Identifier | LeadFieldSpec] = Field(default_factory=list)
    greeting: LocalizedText | None = None
    form_consent: LocalizedText | None = Field(
        default=None, description="the hosted form's required consent checkbox text"
    )
    questions: list[Question] = Field(min_length=1)
    scoring: list[ScoreRule] = Field(default_factory=list)
    outcomes: list[Outcome] = Field(min_length=1)
    handoff: HandoffSettings = Field(default_factory=HandoffSettings)
    keywords: KeywordSettings = Field(default_factory=KeywordSettings)
    calendars: list[CalendarSpec] = Field(
        default_factory=list, description="bookable calendars, for `appointment` questions"
    )
    reminders: ReminderSettings | None = None
    expiry: ExpirySettings | None = None
    first_contact: FirstContact | None = None
    messages: dict[str, LocalizedText] = Field(
        default_factory=dict, description="overrides of the built-in messages by key"
    )

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        return _known_timezone(value)

    @model_validator(mode="after")
    def _calendars_exist(self) -> Script:
        ids = [calendar.id for calendar in self.calendars]
        if len(set(ids)) != len(ids):
            raise ValueError("calendar ids must be unique")
        booking = [q for q in self.questions if isinstance(q, AppointmentQuestion)]
        # One booking per conversation: "reschedule" and "cancel appointment" need no "which?".
        if len(booking) > 1:
            raise ValueError("a script may have one appointment question")
        for question in booking:
            if question.calendar not in ids:
                raise ValueError(
                    f"question {question.id!r} books calendar {question.calendar!r}, "
                    "which `calendars` does not define"
                )
        return self

    @property
    def default_language(self) -> str:
        return self.languages[0]

    def lead_field_types(self) -> dict[str, str]:
        """Every lead field this script declares, with its type."""
        fields: dict[str, str] = {}
        for entry in self.lead_fields:
            if isinstance(entry, str):
                fields[entry] = STANDARD_LEAD_FIELDS.get(entry, "text")
            else:
                fields[entry.name] = entry.type
        return fields


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the format, for editors with the YAML language server."""
    schema = Script.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "leadbot script"
    return schema
