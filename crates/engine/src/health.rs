//! TODO(engine): health.
