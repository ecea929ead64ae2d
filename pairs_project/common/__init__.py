"""Helpers every app may use: no Django, no import of any app."""
