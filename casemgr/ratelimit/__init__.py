"""Request rate limits shared by every app process and host (counters in the database)."""
