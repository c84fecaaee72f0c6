"""Field types: the behaviour of each kind of answer field (label) of a project spec, one class per
kind, found through field_type(label), which raises UnknownFieldType for a class it does not know.

A field type parses and checks an answer, aggregates the experts' answers, measures their
agreement, compares an answer with gold, simulates answers, names its form control, and says what
the submissions gate expects of its column. Stage modules (work, review, expectations, the
workbench pages) call into it and never branch on the label's class.

To add a field type:
1. nightshift/projects/spec.py: its label class (a `type` literal), added to the `Label` union.
2. nightshift/fields/<type>.py: a FieldType subclass implementing the abstract methods.
3. nightshift/fields/registry.py: an instance of it in FIELD_TYPES.
4. app/templates/field_controls.html: the macro its `control` names (or reuse one).
tests/nightshift/fields/ fails until every label class of the union has a registered field type.

This package imports only nightshift.platform, nightshift.projects.spec and libraries.
"""

from nightshift.fields.base import AnswerContext, Ballot, ColumnCheck, FieldResult, FieldType, UnknownFieldType
from nightshift.fields.registry import FIELD_TYPES, compared_labels, field_type, field_type_named

__all__ = [
    "FIELD_TYPES",
    "AnswerContext",
    "Ballot",
    "ColumnCheck",
    "FieldResult",
    "FieldType",
    "UnknownFieldType",
    "compared_labels",
    "field_type",
    "field_type_named",
]
