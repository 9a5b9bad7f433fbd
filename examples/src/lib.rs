//! Shared helpers for the ObzenFlow examples.
