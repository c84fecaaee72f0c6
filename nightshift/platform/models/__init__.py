"""The data model. Invariants live here as keys and checks, so a re-run cannot duplicate work.

One module per part of the model; every model is imported here, so Base.metadata knows every
table (migrations/env.py) and `from nightshift.platform.models import Item` works as it always has.
"""

# In the order of the tables as they were declared in one module: Base.metadata keeps that order.
# isort: off
from nightshift.platform.models.base import (
    ASSIGNMENT_STATUSES,
    ASSIGNMENTS_FILLFACTOR,
    BATCH_STATUSES,
    EXPERT_STATUSES,
    ITEM_STATUSES,
    ITEMS_FILLFACTOR,
    LIVE_ADJUDICATION,
    LIVE_ADJUDICATION_ITEM,
    MESSAGE_STATUSES,
    NAMING,
    OPEN_EXPERT,
    OPS_MESSAGE_STATUSES,
    ROLES,
    TIERS,
    Base,
    BigId,
    JSONType,
    Timestamped,
    as_utc,
    utcnow,
)
from nightshift.platform.models.projects import (
    Batch,
    BudgetLimit,
    Client,
    GoldAnswer,
    Item,
    Project,
    ProjectSpecVersion,
    QuarantinedRow,
)
from nightshift.platform.models.experts import Expert, ExpertLanguage, ExpertRoute, ExpertSkill
from nightshift.platform.models.work import Assignment, AssignmentDraft, GateRun, ItemResult, Review, Submission
from nightshift.platform.models.delivery import Delivery, DeliveryAttempt, DeliveryMessage, RecordVerdict
from nightshift.platform.models.payouts import PAYOUT_KINDS, PayoutEntry
from nightshift.platform.models.ops import ACCESS_ACTORS, API_KEY_KINDS, AccessLog, ApiKey, AuditLog, OpsMessage
from nightshift.platform.models.generation import RESPONSE_STATUSES, RUN_STATUSES, ModelResponse, ModelRun
from nightshift.platform.models.qualification import (
    APPEAL_KINDS,
    APPEAL_STATUSES,
    ATTEMPT_STATUSES,
    EXAM_KINDS,
    Appeal,
    Exam,
    ExamAnswer,
    ExamAttempt,
    ExamItem,
)
# isort: on

__all__ = [
    "ACCESS_ACTORS",
    "API_KEY_KINDS",
    "APPEAL_KINDS",
    "APPEAL_STATUSES",
    "ASSIGNMENTS_FILLFACTOR",
    "ASSIGNMENT_STATUSES",
    "ATTEMPT_STATUSES",
    "BATCH_STATUSES",
    "EXAM_KINDS",
    "EXPERT_STATUSES",
    "ITEMS_FILLFACTOR",
    "ITEM_STATUSES",
    "LIVE_ADJUDICATION",
    "LIVE_ADJUDICATION_ITEM",
    "MESSAGE_STATUSES",
    "NAMING",
    "OPEN_EXPERT",
    "OPS_MESSAGE_STATUSES",
    "PAYOUT_KINDS",
    "RESPONSE_STATUSES",
    "ROLES",
    "RUN_STATUSES",
    "TIERS",
    "AccessLog",
    "ApiKey",
    "Appeal",
    "Assignment",
    "AssignmentDraft",
    "AuditLog",
    "Base",
    "Batch",
    "BigId",
    "BudgetLimit",
    "Client",
    "Delivery",
    "DeliveryAttempt",
    "DeliveryMessage",
    "Exam",
    "ExamAnswer",
    "ExamAttempt",
    "ExamItem",
    "Expert",
    "ExpertLanguage",
    "ExpertRoute",
    "ExpertSkill",
    "GateRun",
    "GoldAnswer",
    "Item",
    "ItemResult",
    "JSONType",
    "ModelResponse",
    "ModelRun",
    "OpsMessage",
    "PayoutEntry",
    "Project",
    "ProjectSpecVersion",
    "QuarantinedRow",
    "RecordVerdict",
    "Review",
    "Submission",
    "Timestamped",
    "as_utc",
    "utcnow",
]
