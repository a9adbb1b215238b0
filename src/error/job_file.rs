//! A job file (or the project file beside it) that cannot be read as one: missing, too large,
//! not UTF-8, or the project file named where a job was expected. Exit 2; nothing was sent.
//! What is wrong inside a file that was read is a diagnostic with a location instead.

use std::path::PathBuf;

/// A job or project file that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum JobFileError {
    /// The project file was named as a job.
    #[error(
        "`{}` is the project file, not a job: its `[gateway]` is shared by the job files beside it",
        path.display()
    )]
    IsProjectFile {
        /// The file named.
        path: PathBuf,
    },
    /// The job file cannot be read.
    #[error("cannot read job file `{}`: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The job file is larger than a job file can be.
    #[error(
        "job file `{}` is {size} bytes; job files are limited to {limit} bytes",
        path.display()
    )]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The job file is not UTF-8 text.
    #[error(
        "job file `{}` is not UTF-8 text (invalid byte at offset {offset})",
        path.display()
    )]
    NotUtf8 {
        /// The file.
        path: PathBuf,
        /// Where the first invalid byte is.
        offset: usize,
    },
    /// The project file beside the job cannot be read.
    #[error("cannot read the project file `{}`: {source}", path.display())]
    ReadProject {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

impl JobFileError {
    /// What to do about it, apart from the message (see [`super::advice`]).
    pub fn help(&self) -> Option<String> {
        match self {
            JobFileError::IsProjectFile { .. } => Some("name the job files instead".to_owned()),
            _ => None,
        }
    }
}
