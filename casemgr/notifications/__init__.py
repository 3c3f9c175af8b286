"""In-app notifications (issue 20): mentions, customer replies, SLA warnings and take-overs on a user's cases."""
