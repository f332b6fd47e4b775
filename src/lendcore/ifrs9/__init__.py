"""IFRS 9 provisioning: staging, PD, expected credit loss, movement reports (pure, columnar)."""
