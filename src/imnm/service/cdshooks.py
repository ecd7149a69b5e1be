"""CDS Hooks 2.0 models, written from the specification (https://cds-hooks.hl7.org/2.0/).

Requests are validated strictly where the spec says "required"; unknown keys are tolerated
(clients add extensions). Responses follow the spec's JSON rule: optional elements are
omitted, never sent as null or empty (``model_dump(exclude_none=True)``).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="allow")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FhirAuthorization(_Lenient):
    """OAuth 2.0 access token the service may use to call the FHIR server."""

    access_token: str
    token_type: Literal["Bearer"]
    expires_in: int
    scope: str
    subject: str
    patient: str | None = None


# FHIR's id datatype: what may go into a FHIR URL built from a hook's context, and nothing else.
FHIR_ID = r"^[A-Za-z0-9\-.]{1,64}$"


class PatientViewContext(_Lenient):
    """Context of the patient-view hook. The ids must be FHIR ids before any of them is put
    into a request to the FHIR server (no '../', '?' or '/')."""

    userId: str
    patientId: str = Field(pattern=FHIR_ID)
    encounterId: str | None = Field(None, pattern=FHIR_ID)


class HookRequest(_Lenient):
    """A CDS Hooks service call."""

    hook: str
    hookInstance: str
    fhirServer: str | None = None
    fhirAuthorization: FhirAuthorization | None = None
    context: dict[str, Any]
    prefetch: dict[str, Any] | None = None

    @field_validator("hookInstance")
    @classmethod
    def _instance(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("a hookInstance (a UUID)")
        return value


class Coding(_Strict):
    """A CDS Hooks Coding: system and code required, display where the spec asks for it."""

    code: str
    system: str
    display: str | None = None


class Source(_Strict):
    """Where a card's guidance comes from."""

    label: str
    url: str | None = None
    icon: str | None = None
    topic: Coding | None = None


class Action(_Strict):
    """A change the client may make."""

    type: Literal["create", "update", "delete"]
    description: str
    resource: dict[str, Any] | None = None
    resourceId: list[str] | None = None


class Suggestion(_Strict):
    """A set of actions offered together."""

    label: str
    uuid: str | None = None
    isRecommended: bool | None = None
    actions: list[Action] | None = None


class Link(_Strict):
    """A link to more information or a SMART app."""

    label: str
    url: str
    type: Literal["absolute", "smart"]
    appContext: str | None = None


class Card(_Strict):
    """A CDS Hooks card."""

    uuid: str | None = None
    summary: str = Field(max_length=139, description="One sentence, under 140 characters.")
    detail: str | None = None
    indicator: Literal["info", "warning", "critical"]
    source: Source
    suggestions: list[Suggestion] | None = None
    selectionBehavior: Literal["at-most-one", "any"] | None = None
    overrideReasons: list[Coding] | None = None
    links: list[Link] | None = None


class CardsResponse(_Strict):
    """The response to a hook call."""

    cards: list[Card]


class Service(_Strict):
    """One entry of the discovery document."""

    hook: str
    title: str | None = None
    description: str
    id: str
    prefetch: dict[str, str] | None = None
    usageRequirements: str | None = None


class Discovery(_Strict):
    """The discovery document."""

    services: list[Service]


class AcceptedSuggestion(_Lenient):
    """A suggestion the user accepted."""

    id: str


class OverrideReason(_Lenient):
    """Why a card was overridden."""

    reason: dict[str, Any] | None = None
    userComment: str | None = None


class FeedbackItem(_Lenient):
    """Feedback on one card."""

    card: str
    outcome: Literal["accepted", "overridden"]
    acceptedSuggestions: list[AcceptedSuggestion] | None = None
    overrideReason: OverrideReason | None = None
    outcomeTimestamp: str


class Feedback(_Lenient):
    """The feedback request."""

    feedback: list[FeedbackItem]
