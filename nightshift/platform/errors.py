"""Errors the faces (CLI, web) turn into one clear line."""


class NightshiftError(Exception):
    """An expected failure with a message fit for an operator: no traceback needed."""


class NotFoundError(NightshiftError):
    pass


class SpecError(NightshiftError):
    pass


class SourceError(NightshiftError):
    pass
