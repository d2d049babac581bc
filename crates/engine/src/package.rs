//! TODO(engine): package.
