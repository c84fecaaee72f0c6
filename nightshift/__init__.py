"""Nightshift's domain core: settings, models, the project spec and each stage's logic.

Plain Python only: no Prefect here. Every stage is a function that takes a session and data.
"""

__version__ = "0.1.0"
