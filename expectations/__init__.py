"""One Great Expectations suite per quality gate, built in code from the project's thresholds.

Great Expectations takes seconds to import, so each gate imports it only when it runs.
"""
