//! The waPC guest side of an admission policy.
