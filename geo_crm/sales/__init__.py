"""Sales opportunities: creation, assignment, development plans, stage history, win/lose."""
