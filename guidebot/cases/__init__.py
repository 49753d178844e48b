"""Case progress: statuses, working-day deadlines, import, lookup and staff commands."""
