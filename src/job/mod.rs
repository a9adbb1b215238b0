//! Job files: the raw serde mirror, the validated model, and validation between them.

pub mod model;
pub mod raw;
pub mod validate;

pub use model::Job;
pub use validate::{LoadOptions, load, load_str};
