"""The field types by label class: field_type(label) is the one way to a label's behaviour."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

from nightshift.fields.base import FieldType, UnknownFieldType
from nightshift.fields.chat import ChatField
from nightshift.fields.free_text import FreeTextField
from nightshift.fields.graded_preference import GradedPreferenceField
from nightshift.fields.multi_choice import MultiChoiceField
from nightshift.fields.ordinal_scale import OrdinalScaleField
from nightshift.fields.pairwise_preference import PairwisePreferenceField
from nightshift.fields.prompt_rewrite import PromptRewriteField
from nightshift.fields.ranking import RankingField
from nightshift.fields.rubric import RubricField
from nightshift.fields.single_choice import SingleChoiceField
from nightshift.fields.spans import SpansField

FIELD_TYPES: tuple[FieldType[Any], ...] = (
    OrdinalScaleField(),
    SingleChoiceField(),
    MultiChoiceField(),
    FreeTextField(),
    PairwisePreferenceField(),
    GradedPreferenceField(),
    RankingField(),
    RubricField(),
    SpansField(),
    PromptRewriteField(),
    ChatField(),
)

_BY_CLASS: dict[type, FieldType[Any]] = {kind.label_class: kind for kind in FIELD_TYPES}
_BY_NAME: dict[str, FieldType[Any]] = {kind.type_name: kind for kind in FIELD_TYPES}


def field_type(label: object) -> FieldType[Any]:
    """The field type of a label of the spec. UnknownFieldType for a class none is registered for."""
    try:
        return _BY_CLASS[type(label)]
    except KeyError:
        name = getattr(label, "name", None)
        raise UnknownFieldType(
            f"label {name!r}: no field type for {type(label).__name__} (type {getattr(label, 'type', None)!r}); "
            "register one in nightshift/fields/registry.py"
        ) from None


_L = TypeVar("_L")


def compared_labels(labels: Iterable[_L]) -> list[_L]:
    """The labels whose answers are compared with gold or a final answer, in the spec's order (free
    text and the other own-words fields never are: they cannot be judged right or wrong)."""
    return [label for label in labels if field_type(label).comparison_order is not None]


def field_type_named(type_name: str) -> FieldType[Any]:
    """The field type of a label's `type` value (a label read back as JSON). UnknownFieldType if none."""
    try:
        return _BY_NAME[type_name]
    except KeyError:
        raise UnknownFieldType(f"no field type named {type_name!r}") from None
