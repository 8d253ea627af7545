"""Service requests: filing, assignment to a service agent, handling, rating, reopening."""
