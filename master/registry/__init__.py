"""Per-kind rules (defaulting, validation, allocation) the generic API handlers call."""
