//! TODO(engine): plan.
