//! TODO(engine): journal.
