"""The security log: logins, logouts, throttling, denials, CSRF and rate-limit refusals (issue 18)."""
