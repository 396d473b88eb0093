//! The wire format (being written).
