//! TODO(engine): rehearse.
