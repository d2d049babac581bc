//! TODO(engine): hooks.
