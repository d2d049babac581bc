//! TODO(engine): stages.
