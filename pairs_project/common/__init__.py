"""Helpers every app may use: they import no app of the project (pure, or Django only)."""
