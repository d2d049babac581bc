//! TODO(engine): state.
