"""Mirrorline service: CLI, analysis runner, HTTP API."""
