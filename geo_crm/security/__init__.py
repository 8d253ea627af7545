"""Authentication, permissions and the single visibility Scope."""
