"""Mirrorline DSP: pure numpy/scipy functions, arrays in, arrays or frozen dataclasses out.

Nothing here imports pydantic, FastAPI, settings, or the ``models``/``service`` packages.
"""
