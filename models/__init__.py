"""The JSON contract: request parameters and the report, as pydantic models."""

from models.params import AnalysisConfig
from models.report import SCHEMA_VERSION, Report

__all__ = ["SCHEMA_VERSION", "AnalysisConfig", "Report"]
