"""Identity and permissions (pure): roles, actors, the permission table, credentials."""
