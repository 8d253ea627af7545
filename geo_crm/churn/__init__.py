"""Churn warnings: a scheduled, re-runnable scan; recovery measures; confirmed losses."""
