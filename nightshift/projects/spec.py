"""The project spec: what a client wants done, declared in YAML and checked before it is stored."""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from nightshift.platform.errors import SpecError
from nightshift.platform.retry_schedule import RetrySchedule

SLUG = r"^[a-z0-9][a-z0-9-]{0,63}$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SecretRef(Strict):
    """Where a secret is kept (a client's whsec_ secret, a model endpoint's API key); the spec never
    holds the secret itself."""

    env: str | None = Field(default=None, description="Name of an environment variable.")
    prefect_secret: str | None = Field(default=None, description="Name of a Prefect Secret block.")

    @model_validator(mode="after")
    def _exactly_one(self) -> SecretRef:
        if (self.env is None) == (self.prefect_secret is None):
            raise ValueError("give exactly one of env or prefect_secret")
        return self

    def as_ref(self) -> str:
        return f"env:{self.env}" if self.env else f"prefect:{self.prefect_secret}"


WebhookSecretRef = SecretRef


class ClientSpec(Strict):
    slug: str = Field(pattern=SLUG)
    name: str = Field(min_length=1, max_length=200)
    webhook_url: str | None = Field(default=None, pattern=r"^https?://")
    webhook_secret: WebhookSecretRef | None = None
    webhook_retry_schedule: RetrySchedule | None = Field(
        default=None, description="This endpoint's own retry schedule; unset: the service's setting."
    )
    slack_channel: str | None = None
    retention_days: int | None = Field(
        default=None,
        ge=1,
        le=3650,
        description="Days after a batch's last delivery when its content (items, answers, model output, "
        "delivered files) is purged; ids, hashes and the audit trail stay. Unset: kept.",
    )

    @model_validator(mode="after")
    def _secret_with_url(self) -> ClientSpec:
        if self.webhook_url and not self.webhook_secret:
            raise ValueError("webhook_url needs webhook_secret (an env var or Prefect Secret name)")
        return self


class InputField(Strict):
    name: str = Field(pattern=r"^[a-z_][a-z0-9_]*$")
    type: Literal["text", "integer", "number", "boolean"] = "text"
    required: bool = True
    min_length: int = Field(default=0, ge=0)
    max_length: int = Field(default=100_000, gt=0)


class _Label(Strict):
    name: str = Field(pattern=r"^[a-z_][a-z0-9_]*$")
    description: str = ""
    required: bool = True


class SingleChoice(_Label):
    type: Literal["single_choice"]
    options: list[str] = Field(min_length=2)
    aggregation: Literal["dawid_skene", "majority_vote"] = Field(
        default="dawid_skene",
        description="dawid_skene: weighs each expert by their confusion matrix, learnt over the batch "
        "with their reliability as prior; majority_vote: one expert, one vote.",
    )


class MultiChoice(_Label):
    type: Literal["multi_choice"]
    options: list[str] = Field(min_length=1)
    required: bool = False


class OrdinalScale(_Label):
    type: Literal["ordinal_scale"]
    min: int
    max: int

    @model_validator(mode="after")
    def _range(self) -> OrdinalScale:
        if self.max <= self.min:
            raise ValueError("max must be greater than min")
        return self


class PairwisePreference(_Label):
    type: Literal["pairwise_preference"]
    options: list[str] = Field(default_factory=lambda: ["A", "B", "tie"])


class GradedPreference(_Label):
    """Which of two responses is better, and by how much: a whole number from -strength (the first
    much better) through 0 (a tie) to +strength (the second much better)."""

    type: Literal["graded_preference"]
    options: list[str] = Field(default_factory=lambda: ["A", "B"], min_length=2, max_length=2)
    strength: int = Field(default=3, ge=1, le=5, description="Levels of preference on each side of a tie.")

    @model_validator(mode="after")
    def _distinct(self) -> GradedPreference:
        if self.options[0] == self.options[1]:
            raise ValueError("options must be two different responses")
        return self

    @property
    def min(self) -> int:
        return -self.strength

    @property
    def max(self) -> int:
        return self.strength


class FreeText(_Label):
    type: Literal["free_text"]
    min_length: int = Field(default=0, ge=0)
    max_length: int = Field(default=20_000, gt=0)


class Ranking(_Label):
    """Options ordered best first; with generation, the options are the responses' labels (A, B, …)."""

    type: Literal["ranking"]
    options: list[str] = Field(
        default_factory=lambda: ["A", "B"],
        min_length=2,
        max_length=6,
        description="What is ranked: the model responses' labels A, B, … (endpoints in name order).",
    )

    @model_validator(mode="after")
    def _distinct(self) -> Ranking:
        if len(set(self.options)) != len(self.options) or any("=" in o or ";" in o for o in self.options):
            raise ValueError("options must be distinct and hold no '=' or ';'")
        return self


class Criterion(Strict):
    name: str = Field(pattern=r"^[a-z_][a-z0-9_]*$")
    description: str = Field(default="", max_length=2_000)
    weight: float = Field(default=1.0, gt=0, le=100, description="Its share of the weighted total.")
    min: int = Field(default=0, ge=-100, le=100)
    max: int = Field(default=4, ge=-100, le=100)

    @model_validator(mode="after")
    def _range(self) -> Criterion:
        if self.max <= self.min:
            raise ValueError(f"criterion {self.name}: max must be greater than min")
        return self


class Rubric(_Label):
    """Every criterion scored; the weighted total (0 to 1) is computed, never entered."""

    type: Literal["rubric"]
    criteria: list[Criterion] = Field(min_length=1, max_length=30)

    @model_validator(mode="after")
    def _distinct(self) -> Rubric:
        names = [c.name for c in self.criteria]
        if len(set(names)) != len(names):
            raise ValueError("criteria names must be distinct")
        return self


ERROR_TYPES = ["context_misread", "reasoning_flaw", "factual_error", "instruction_violation", "unsafe"]


class Spans(_Label):
    """Spans of the models' answers, each tagged with an error type and an optional note. No span
    is an answer too (nothing wrong found), so the label is optional by default."""

    type: Literal["spans"]
    required: bool = False
    error_types: list[str] = Field(default_factory=lambda: list(ERROR_TYPES), min_length=1, max_length=20)
    max_spans: int = Field(default=20, ge=1, le=100)
    max_note_chars: int = Field(default=500, ge=0, le=5_000)

    @model_validator(mode="after")
    def _distinct(self) -> Spans:
        if len(set(self.error_types)) != len(self.error_types):
            raise ValueError("error_types must be distinct")
        return self


class PromptRewrite(_Label):
    """The item's prompt rewritten by the expert and run against one of the project's models from
    the workbench: the answer keeps the rewrite and the run, whose answer is shown beside the old."""

    type: Literal["prompt_rewrite"]
    endpoint: str | None = Field(default=None, description="The endpoint runs go to; unset: the first by name.")
    min_length: int = Field(default=20, ge=1)
    max_length: int = Field(default=20_000, gt=0, le=100_000)


class Chat(_Label):
    """A conversation the expert holds with one of the project's models about the item: each turn
    (the expert's message, the model's reply) is stored as it happens; the expert then rates every
    reply on the scale and marks the ones with errors. The answer cites the turns, in order."""

    type: Literal["chat"]
    endpoint: str | None = Field(default=None, description="The endpoint the chat is with; unset: the first by name.")
    min_turns: int = Field(default=1, ge=1, le=50)
    max_turns: int = Field(default=10, ge=1, le=50)
    max_message_length: int = Field(default=8_000, ge=1, le=100_000)
    rating_min: int = Field(default=1, ge=-100, le=100)
    rating_max: int = Field(default=5, ge=-100, le=100)
    error_types: list[str] = Field(default_factory=lambda: list(ERROR_TYPES), min_length=1, max_length=20)
    max_note_chars: int = Field(default=500, ge=0, le=5_000)

    @model_validator(mode="after")
    def _bounds(self) -> Chat:
        if self.max_turns < self.min_turns:
            raise ValueError("max_turns must be at least min_turns")
        if self.rating_max <= self.rating_min:
            raise ValueError("rating_max must be greater than rating_min")
        if len(set(self.error_types)) != len(self.error_types):
            raise ValueError("error_types must be distinct")
        return self


# Labels whose answers cite the task's own runs of a model (nightshift.work.model_runs).
ModelInTheLoop = PromptRewrite | Chat


Label = Annotated[
    SingleChoice
    | MultiChoice
    | OrdinalScale
    | PairwisePreference
    | GradedPreference
    | FreeText
    | Ranking
    | Rubric
    | Spans
    | PromptRewrite
    | Chat,
    Field(discriminator="type"),
]


class Overlap(Strict):
    min: int = Field(
        default=2,
        ge=1,
        le=20,
        description="Experts each item starts with; one more is added at a time while it is unsettled.",
    )
    max: int = Field(default=5, ge=1, le=20, description="The most annotators an item gets before adjudication.")

    @model_validator(mode="after")
    def _order(self) -> Overlap:
        if self.max < self.min:
            raise ValueError("max must be at least min")
        return self


class Gates(Strict):
    min_time_on_task_seconds: int = Field(default=60, ge=0)
    min_agreement: float = Field(default=0.5, ge=0, le=1, description="Share of experts agreeing per item.")
    min_alpha: float = Field(
        default=0.667,
        ge=-1,
        le=1,
        description="Krippendorff's alpha per field: the batch's health, reported; it does not route items.",
    )
    min_project_alpha: float | None = Field(
        default=None,
        ge=-1,
        le=1,
        description="Krippendorff's alpha per field pooled over the project's recent batches: checked when a "
        "batch passes, recorded as the project-agreement gate, ops told when under it; it holds nothing. "
        "Unset: reported only.",
    )
    min_confidence: float = Field(
        default=0.8,
        ge=0,
        le=1,
        description="For a field with a fixed set of answers: the probability, votes weighed by each expert's "
        "quality, that the final answer is right; under it the item gets one more expert (0: a clear majority "
        "is enough).",
    )
    min_gold_accuracy: float = Field(
        default=0.7,
        ge=0,
        le=1,
        description="The accuracy floor: an expert very probably under it (review.quality) is paused.",
    )
    min_gold_answers: int = Field(
        default=3,
        ge=1,
        description="Judged answers (gold, or agreement with final answers) an expert needs before the gold gate "
        "judges them; the posterior keeps a few answers from being a verdict anyway.",
    )
    reading_chars_per_second: float | None = Field(
        default=40,
        gt=0,
        description="Fastest plausible reading of the item's text: time on task below min_time_on_task_seconds "
        "plus the text's length at this speed is too fast. None turns the check off (simulations).",
    )
    min_copied_text_length: int = Field(
        default=40, ge=1, description="Free text this long or longer, identical across experts, is flagged as pasted."
    )
    max_echo_similarity: float = Field(
        default=0.9,
        ge=0.5,
        le=1,
        description="An expert's text (free text, a rewrite) at least this alike (0-1, case and punctuation "
        "ignored) to the item's input or a model's answer is rejected as a trivial edit. 1: never checked.",
    )
    near_duplicate_similarity: float | None = Field(
        default=None,
        ge=0.5,
        le=1,
        description="Free text this alike (Jaccard of word 3-grams, MinHash) to an earlier text of another expert "
        "on an item of the round, but not identical, is a near_duplicate signal on the later one (it raises its "
        "risk; it rejects nothing). Unset: not looked for (it costs ~0.15 ms a text).",
    )
    max_failed_share: float = Field(default=0.2, ge=0, le=1, description="Share of failing submissions.")


class Bonus(Strict):
    """A quality bonus: a percent of the expert's time pay on this project in a period, earned when
    a rule's rate reaches its minimum over enough evidence."""

    rule: Literal["gold_accuracy", "on_time_rate"] = Field(
        description="gold_accuracy: share of gold items answered right; on_time_rate: share of work due "
        "in the period that was submitted by its due time (expired work counts as late)."
    )
    min: float = Field(ge=0, le=1, description="The rate the expert must reach.")
    percent: Decimal = Field(gt=0, le=100, description="Percent of the period's time pay on this project.")
    min_count: int = Field(default=5, ge=1, description="Fewest answers (or due tasks) the rule judges by.")


class RoleRates(Strict):
    """Multiplier of the expert's hourly rate for each kind of work."""

    annotate: Decimal = Field(default=Decimal("1"), gt=0)
    review: Decimal = Field(default=Decimal("1.25"), gt=0)
    adjudicate: Decimal = Field(default=Decimal("1.5"), gt=0)

    def of(self, role: str) -> Decimal:
        multiplier: Decimal = getattr(self, role)
        return multiplier


class Level(Strict):
    """An expert level: who holds it (their level in the project's skills, their quality) and the
    hourly rate it pays."""

    name: str = Field(min_length=1, max_length=40)
    min_skill_level: int = Field(
        default=0, ge=0, le=5, description="The lowest level (exams) the expert holds across the required skills."
    )
    min_quality: float = Field(default=0, ge=0, le=1, description="The expert's quality estimate (reliability).")
    hourly_rate: Decimal = Field(gt=0, le=10_000, decimal_places=2)


class Payouts(Strict):
    max_minutes_per_task: float = Field(
        default=60, gt=0, description="Time on one task is billed up to this, so an open tab does not bill."
    )
    role_rates: RoleRates = RoleRates()
    rejected_pay_share: Decimal = Field(
        default=Decimal("0"), ge=0, le=1, description="Share of its time pay that rejected work keeps (0: unpaid)."
    )
    bonuses: list[Bonus] = Field(default_factory=list)
    levels: list[Level] | None = Field(
        default=None,
        max_length=20,
        description="Expert levels and their hourly rates: time is paid at the best-paid level the expert holds "
        "when the pay run judges it (their own registry rate where they hold none). Unset: every expert's own rate.",
    )

    @model_validator(mode="after")
    def _distinct_levels(self) -> Payouts:
        names = [level.name for level in self.levels or []]
        if len(set(names)) != len(names):
            raise ValueError("levels: each level needs its own name")
        return self


class ModelParameters(Strict):
    """Sampling parameters sent with every request; part of what a response is keyed by."""

    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    max_tokens: int | None = Field(default=None, ge=1, le=128_000)
    seed: int | None = Field(default=None, ge=0, le=2**31 - 1)
    stop: list[str] | None = Field(default=None, max_length=4)


class ModelEndpoint(Strict):
    """A model that speaks the OpenAI Chat Completions API: a hosted API, vLLM, Ollama, or the
    local model server (`nightshift model-server`)."""

    name: str = Field(pattern=SLUG, description="This project's name for it; responses are stored under it.")
    base_url: str = Field(pattern=r"^https?://", max_length=2000, description="Up to /v1.")
    model: str = Field(min_length=1, max_length=200)
    api_key: SecretRef | None = Field(default=None, description="Unset: the server needs no key (local).")
    parameters: ModelParameters = ModelParameters()
    system_prompt: str | None = Field(default=None, max_length=20_000)
    timeout_seconds: float = Field(default=60, gt=0, le=600)
    max_retries: int = Field(
        default=3, ge=0, le=10, description="Retries of a timeout, 429 or 5xx, honouring Retry-After."
    )
    max_concurrent: int = Field(default=16, ge=1, le=512, description="Requests in flight at once, all workers.")
    per_minute: int | None = Field(default=None, ge=1, le=1_000_000, description="Requests started per minute.")
    # What the endpoint's tokens cost, for the project's cost (a local model costs nothing).
    usd_per_million_prompt_tokens: Decimal = Field(default=Decimal("0"), ge=0, le=100_000, decimal_places=6)
    usd_per_million_completion_tokens: Decimal = Field(default=Decimal("0"), ge=0, le=100_000, decimal_places=6)


class Generation(Strict):
    """Where a project's prompts come from when its models answer them before experts see them."""

    prompt_field: str = Field(pattern=r"^[a-z_][a-z0-9_]*$", description="The input field sent as the prompt.")
    context_field: str | None = Field(
        default=None, description="A text input field sent before the prompt (the scenario's context)."
    )
    endpoints: list[ModelEndpoint] = Field(min_length=1, max_length=8)
    runs_per_expert_per_hour: int = Field(
        default=30, ge=1, le=1_000, description="Runs of a rewritten prompt one expert may ask for in an hour."
    )

    @model_validator(mode="after")
    def _unique(self) -> Generation:
        names = [e.name for e in self.endpoints]
        if len(set(names)) != len(names):
            raise ValueError("endpoints: names must be unique")
        return self


class Budget(Strict):
    """Hard limits: dispatch staffs no work past them (spent and committed together) until ops
    raise them (`nightshift budget raise` or the raise-budget deployment); ops hear at 80% and 100%."""

    project: Decimal | None = Field(default=None, ge=0, description="Spend cap in USD for the whole project.")
    per_batch: Decimal | None = Field(default=None, ge=0, description="Spend cap in USD for each batch.")
    project_hours: Decimal | None = Field(default=None, ge=0, description="Expert hours for the whole project.")
    per_batch_hours: Decimal | None = Field(default=None, ge=0, description="Expert hours for each batch.")


PersonalDataKind = Literal["EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IBAN_CODE", "IP_ADDRESS", "US_SSN"]
PERSONAL_DATA_KINDS: list[PersonalDataKind] = [
    "EMAIL_ADDRESS",
    "PHONE_NUMBER",
    "CREDIT_CARD",
    "IBAN_CODE",
    "IP_ADDRESS",
    "US_SSN",
]


class Privacy(Strict):
    """Personal data in the client's items, looked for at ingest (Microsoft Presidio's recognizers);
    what is found is recorded on the item or the quarantined row as kinds and counts, never values."""

    action: Literal["allow", "redact", "quarantine"] = Field(
        description="allow: stored as sent, findings recorded; redact: each finding replaced by its kind, "
        "e.g. <EMAIL_ADDRESS>, before anyone sees the item; quarantine: the row is held out, masked, with "
        "the kinds found as its reason."
    )
    kinds: list[PersonalDataKind] = Field(
        default_factory=lambda: list(PERSONAL_DATA_KINDS),
        min_length=1,
    )
    fields: list[str] | None = Field(default=None, description="Text input fields scanned; unset: every one.")
    min_score: float = Field(
        default=0.4, ge=0, le=1, description="Presidio's confidence under which a finding is ignored."
    )


class ProjectBody(Strict):
    slug: str = Field(pattern=SLUG)
    name: str = Field(min_length=1, max_length=200)
    instructions: str = Field(min_length=1)
    input_fields: list[InputField] = Field(min_length=1)
    labels: list[Label] = Field(min_length=1)
    required_skills: list[str] = Field(default_factory=list)
    skill_field: str | None = Field(
        default=None, description="A text input field naming one more skill each item needs (its domain)."
    )
    skill_level: int | None = Field(
        default=None,
        ge=1,
        le=5,
        description="The level (granted by passing the skill's exam) at which experts must hold every "
        "required skill (and an item's own skill, with a skill_field) to get its work, reviews and "
        "adjudications. Needs required_skills. Unset: claiming a skill is enough.",
    )
    languages: list[str] = Field(min_length=1)
    overlap: Overlap = Overlap()
    review: bool = True
    review_share: float = Field(
        default=0.25,
        ge=0,
        le=1,
        description="With review on: the share of proven experts' annotations a reviewer sees (a fixed "
        "sample). New experts' and those under a new expert's quality are always reviewed: that is where a "
        "review can change an outcome. 1: every annotation.",
    )
    review_wait_hours: float = Field(
        default=0,
        ge=0,
        le=720,
        description="With review on: how long an annotation the review policy picks waits for a reviewer "
        "before the submissions gate judges it without one (no reviewer able to take it: no wait). 0: the "
        "gate waits only for reviews already claimed. The gate never judges an annotation while its review "
        "is open.",
    )
    rework_rounds: int = Field(
        default=3,
        ge=1,
        le=20,
        description="Times an item's annotations may be rejected (by the submissions gate or a reviewer) "
        "before an adjudicator decides it instead of another rework round.",
    )
    gold_rate: float = Field(default=0.05, ge=0, le=0.5)
    assignment_deadline_hours: float = Field(default=24, gt=0)
    turnaround_hours: float = Field(
        default=72, gt=0, description="Hours from a batch's arrival to its delivery that the client expects."
    )
    expected_minutes_per_item: float = Field(default=15, gt=0)
    currency: Literal["USD"] = "USD"
    gates: Gates = Gates()
    payouts: Payouts = Payouts()
    budget: Budget = Budget()
    generation: Generation | None = Field(
        default=None, description="The project's models, asked for a response to each item before dispatch."
    )
    privacy: Privacy | None = Field(default=None, description="Unset: items are not scanned for personal data.")
    acceptance_days: int | None = Field(
        default=None,
        ge=1,
        le=90,
        description="Days after each delivered version in which the client may accept or reject its records "
        "(a rejection with a reason sends the record to adjudication, unbilled, and redelivers it); what is not "
        "rejected is accepted when they end. Unset: delivered records are final.",
    )

    @model_validator(mode="after")
    def _unique_names(self) -> ProjectBody:
        for kind, names in (
            ("input_fields", [f.name for f in self.input_fields]),
            ("labels", [lab.name for lab in self.labels]),
        ):
            duplicates = sorted({n for n in names if names.count(n) > 1})
            if duplicates:
                raise ValueError(f"{kind}: duplicate name {duplicates[0]!r}")
        if "external_id" in {f.name for f in self.input_fields}:
            raise ValueError("input_fields: external_id is implicit, do not declare it")
        if self.skill_level and not self.required_skills:
            raise ValueError("skill_level: name the required_skills it asks that level of")
        if self.skill_field and self.skill_field not in {f.name for f in self.input_fields if f.type == "text"}:
            raise ValueError(f"skill_field: {self.skill_field!r} is not a text input field")
        if self.privacy and self.privacy.fields is not None:
            texts = {f.name for f in self.input_fields if f.type == "text"}
            for name in self.privacy.fields:
                if name not in texts:
                    raise ValueError(f"privacy.fields: {name!r} is not a text input field")
        for label in self.labels:
            if not self.generation and isinstance(label, PromptRewrite | Chat):
                raise ValueError(f"labels: a {label.type} label needs generation (the models its runs go to)")
        if self.generation:
            texts = {f.name for f in self.input_fields if f.type == "text"}
            for kind in ("prompt_field", "context_field"):
                name = getattr(self.generation, kind)
                if name is not None and name not in texts:
                    raise ValueError(f"generation.{kind}: {name!r} is not a text input field")
            # Experts see the endpoints' answers as Response A, B, … (endpoints in name order): a
            # ranking of lettered options ranks exactly those.
            endpoint_names = {e.name for e in self.generation.endpoints}
            for rewrite in (label for label in self.labels if isinstance(label, PromptRewrite | Chat)):
                if rewrite.endpoint is not None and rewrite.endpoint not in endpoint_names:
                    raise ValueError(
                        f"labels: {rewrite.name!r} runs on {rewrite.endpoint!r}, not an endpoint of generation"
                    )
            letters = [chr(ord("A") + k) for k in range(len(self.generation.endpoints))]
            for ranking in (label for label in self.labels if isinstance(label, Ranking)):
                lettered = all(len(o) == 1 and o.isupper() for o in ranking.options)
                if lettered and ranking.options != letters:
                    raise ValueError(
                        f"labels: ranking {ranking.name!r} ranks {ranking.options}, but the "
                        f"{len(letters)} endpoints' answers are {letters}"
                    )
        return self

    def scanned_fields(self) -> list[str]:
        """The text input fields scanned for personal data (none without a privacy policy)."""
        if self.privacy is None:
            return []
        texts = [f.name for f in self.input_fields if f.type == "text"]
        return texts if self.privacy.fields is None else [n for n in texts if n in self.privacy.fields]

    def label(self, name: str) -> Label:
        for label in self.labels:
            if label.name == name:
                return label
        raise KeyError(name)


ADDED_SINCE_FIRST_VERSION = ("generation", "privacy", "acceptance_days", "skill_level")
ADDED_SINCE_FIRST_VERSION_NESTED = (
    ("gates", "min_project_alpha"),
    ("gates", "near_duplicate_similarity"),
    ("payouts", "levels"),
)


class ProjectSpec(Strict):
    client: ClientSpec
    project: ProjectBody

    def project_hash(self) -> str:
        # Fields added since are left out while unset: a spec applied again unchanged keeps its hash,
        # and so its version.
        unset_since = {name for name in ADDED_SINCE_FIRST_VERSION if getattr(self.project, name) is None}
        body = self.project.model_dump(mode="json", exclude=unset_since)
        for section, name in ADDED_SINCE_FIRST_VERSION_NESTED:
            if body[section].get(name) is None:
                body[section].pop(name, None)
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


def parse_spec(data: Any, source: str = "spec") -> ProjectSpec:
    try:
        return ProjectSpec.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "(top level)"
        raise SpecError(f"{source}: {where}: {first['msg']}") from None


def load_spec(path: Path) -> ProjectSpec:
    if not path.is_file():
        raise SpecError(f"spec file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        reason = str(exc).splitlines()[0]
        raise SpecError(f"{path}: not valid YAML: {reason}") from None
    if not isinstance(data, dict):
        raise SpecError(f"{path}: expected a mapping with client and project")
    return parse_spec(data, str(path))
